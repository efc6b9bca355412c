# DynOPool-S vgg16 on FGVC-Aircraft: lambda and first-layer scale from
# Table A (3.07e-05, 0.5).
_base_ = './vgg16_human_1xb8-200e_fgvc-aircraft.py'
model = dict(
    backbone=dict(type='DynOPoolVGG', init_scales=[0.5, 0.5, 0.5, 0.5, 0.5]))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=3.07e-05, input_size=(224, 224)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
# DynOPool trains 250 epochs where its baselines train 200 (Sec. 5.1).
train_cfg = dict(max_epochs=250)
param_scheduler = dict(T_max=250)
