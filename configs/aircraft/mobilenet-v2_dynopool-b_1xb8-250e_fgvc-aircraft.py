# DynOPool-B MobileNetV2 on FGVC-Aircraft: the DynOPool-S config with Table
# A's -B lambda (0: no GMACs loss) and first-layer scale (0.5).
_base_ = './mobilenet-v2_dynopool-s_1xb8-250e_fgvc-aircraft.py'
# A list: inheritance replaces it whole, so it is restated.
custom_hooks = [
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
