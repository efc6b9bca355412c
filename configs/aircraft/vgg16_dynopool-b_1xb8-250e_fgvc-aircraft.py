# DynOPool-B VGG-16 on FGVC-Aircraft: the DynOPool-S config with Table
# A's -B lambda (6.51e-06) and first-layer scale (0.5).
_base_ = './vgg16_dynopool-s_1xb8-250e_fgvc-aircraft.py'
# A list: inheritance replaces it whole, so it is restated.
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=6.51e-06, input_size=(224, 224)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
