# DynOPool-S resnet50 on ImageNet: lambda and first-layer scale from Table A.
_base_ = './resnet50_human_4xb64-100e_in1k.py'
model = dict(
    backbone=dict(type='DynOPoolResNet', init_scales=[0.25, 0.5, 0.5, 0.5]))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=8e-05, input_size=(224, 224)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
# DynOPool trains 120 epochs where its baselines train 100 (Table B).
train_cfg = dict(max_epochs=120)
param_scheduler = dict(T_max=120)
