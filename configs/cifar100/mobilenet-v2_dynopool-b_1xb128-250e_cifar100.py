# DynOPool-B MobileNetV2 on CIFAR-100: the DynOPool-S config with Table
# A's -B lambda (1e-07) and first-layer scale (0.5).
_base_ = './mobilenet-v2_dynopool-s_1xb128-250e_cifar100.py'
# A list: inheritance replaces it whole, so it is restated.
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=1e-07, input_size=(32, 32)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(32, 32)),
]
