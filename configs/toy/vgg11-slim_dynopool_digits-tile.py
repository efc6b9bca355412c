# DynOPool slim VGG-11 on digits-tile. lambda: the paper's 7.21e-5 for
# CIFAR-tile (supplementary) times 121.3 = VGG-16 / this network's GMACs.
_base_ = './vgg11-slim_human_digits-tile.py'
model = dict(backbone=dict(type='DynOPoolSlimVGG', init_scales=0.5))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.00875, input_size=(64, 64)),
    dict(type='ShapeLoggingHook', interval=47, input_size=(64, 64)),
]
