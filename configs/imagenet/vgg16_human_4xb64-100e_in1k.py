# Human-designed vgg16 on ImageNet, one FC layer at the end (DynOPool A.1).
_base_ = [
    '../_base_/models/vgg16_imagenet.py',
    '../_base_/datasets/imagenet_bs64.py',
    '../_base_/schedules/imagenet_100e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
