# DynOPool slim VGG-11 on digits-large. lambda: the paper's 5.03e-5 for
# CIFAR-large (supplementary) times 121.3 = VGG-16 / this network's GMACs.
_base_ = './vgg11-slim_human_digits-large.py'
model = dict(backbone=dict(type='DynOPoolSlimVGG', init_scales=0.5))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.0061, input_size=(64, 64)),
    dict(type='ShapeLoggingHook', interval=47, input_size=(64, 64)),
]
