# Shape Adaptor resnet50 on CIFAR-100 (Shape Adaptor Sec. 4.1): N from
# Eq. 3, search space (0.5, 1), D_last = 2, D_out = 8, alpha updated every
# 20 iterations.
_base_ = './resnet50_human_cifar100.py'
model = dict(
    backbone=dict(type='ShapeAdaptorResNet_CIFAR', input_size=32))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.alpha': dict(lr_mult=1.0, decay_mult=0.0)}))
custom_hooks = [
    dict(type='ShapeAdaptorHook', alpha_interval=20),
    dict(type='ShapeLoggingHook', interval=500, input_size=(32, 32)),
]
