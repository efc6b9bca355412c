# DynOPool-B ResNet-50 on FGVC-Aircraft: the DynOPool-S config with Table
# A's -B lambda (0: no GMACs loss) and first-layer scale (0.7).
_base_ = './resnet50_dynopool-s_1xb8-250e_fgvc-aircraft.py'
model = dict(backbone=dict(init_scales=[0.7, 0.5, 0.5, 0.5]))
# A list: inheritance replaces it whole, so it is restated.
custom_hooks = [
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
