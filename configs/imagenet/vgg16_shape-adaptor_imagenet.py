# Shape Adaptor vgg16 on ImageNet (Shape Adaptor Sec. 4.1): N from
# Eq. 3, search space (0.5, 1), D_last = 2, D_out = 8, alpha updated every
# 1500 iterations.
_base_ = './vgg16_human_imagenet.py'
model = dict(
    backbone=dict(type='ShapeAdaptorVGG', input_size=224))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.alpha': dict(lr_mult=1.0, decay_mult=0.0)}))
custom_hooks = [
    dict(type='ShapeAdaptorHook', alpha_interval=1500),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
