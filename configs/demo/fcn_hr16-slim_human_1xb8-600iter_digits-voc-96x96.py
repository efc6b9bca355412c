# The demo's baseline: the same small FCN-HRNet with the human design
# (strided convolutions, no DynOPool, no GMACs loss), same data and budget.
_base_ = './fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py'
model = dict(backbone=dict(type='HRNet'))
custom_hooks = []
