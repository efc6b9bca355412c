# Human-designed vgg16 on CIFAR-100, one FC layer at the end (DynOPool A.1).
_base_ = [
    '../_base_/models/vgg16_cifar.py', '../_base_/datasets/cifar100_bs128.py',
    '../_base_/schedules/cifar100_200e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
