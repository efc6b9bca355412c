# Human-designed mobilenet_v2 on FGVC-Aircraft, one FC layer at the end
# (DynOPool A.1), with Table B's hyper-parameters at the baselines' 200 epochs.
_base_ = [
    '../_base_/models/mobilenet_v2_imagenet.py',
    '../_base_/datasets/fgvc-aircraft_bs8.py',
    '../_base_/schedules/fgvc-aircraft_200e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
model = dict(head=dict(num_classes=100))
# MobileNetV2: wd 4e-5 (Table B).
optim_wrapper = dict(optimizer=dict(weight_decay=4e-05))
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
