# DynOPool-S resnet50 on CIFAR-100: lambda and first-layer scale from Table A.
_base_ = './resnet50_human_1xb128-200e_cifar100.py'
model = dict(
    backbone=dict(type='DynOPoolResNet_CIFAR', init_scales=[0.6, 0.5, 0.5]))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.0, input_size=(32, 32)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(32, 32)),
]
# DynOPool trains 250 epochs where its baselines train 200 (Sec. 5.1).
train_cfg = dict(max_epochs=250)
param_scheduler = dict(T_max=250)
