# DynOPool slim VGG-11 on digits-stretch-V. lambda: the paper's 2.33e-4 for
# CIFAR-stretch-V (supplementary) times 121.3 = VGG-16 / this network's
# GMACs, so lambda * L_GMACs starts at the paper's value.
_base_ = './vgg11-slim_human_digits-stretch-v.py'
model = dict(backbone=dict(type='DynOPoolSlimVGG', init_scales=0.5))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.0283, input_size=(32, 32)),
    dict(type='ShapeLoggingHook', interval=47, input_size=(32, 32)),
]
