# EfficientNet-B0 with DynOPool on ImageNet (DynOPool Sec. 5.4, Table 3):
# the stem and every strided depthwise conv -> stride 1 + DynOPool (rule B),
# VGG-16's ImageNet hyper-parameters, lambda = 2.5e-5 (Appendix A.2).
_base_ = './efficientnet-b0_human_4xb64-100e_in1k.py'
model = dict(backbone=dict(type='DynOPoolEfficientNet', init_scales=0.5))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=2.5e-05, input_size=(224, 224)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
# DynOPool trains 120 epochs where its baselines train 100 (Table B).
train_cfg = dict(max_epochs=120)
param_scheduler = dict(T_max=120)
