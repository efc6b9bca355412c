# The demo's baseline: the same small FCN-HRNet with the human design
# (strided convolutions, no DynOPool, no GMACs loss), same data and budget.
_base_ = './hrnet_dynopool_digits.py'
model = dict(backbone=dict(type='HRNet'))
custom_hooks = []
