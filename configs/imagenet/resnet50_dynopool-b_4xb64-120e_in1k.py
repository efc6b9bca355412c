# DynOPool-B ResNet-50 on ImageNet: the DynOPool-S config with Table
# A's -B lambda (2e-05) and first-layer scale (0.25).
_base_ = './resnet50_dynopool-s_4xb64-120e_in1k.py'
# A list: inheritance replaces it whole, so it is restated.
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=2e-05, input_size=(224, 224)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
