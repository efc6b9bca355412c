# Human-designed mobilenet_v2 on ImageNet, one FC layer at the end (DynOPool
# A.1).
_base_ = [
    '../_base_/models/mobilenet_v2_imagenet.py',
    '../_base_/datasets/imagenet_bs64.py',
    '../_base_/schedules/imagenet_100e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# MobileNetV2: wd 4e-5, lr 5e-2 (alpha 5e-3) (Table B).
optim_wrapper = dict(
    optimizer=dict(weight_decay=4e-5, lr=0.05),
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.1, decay_mult=0.0)}))
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
