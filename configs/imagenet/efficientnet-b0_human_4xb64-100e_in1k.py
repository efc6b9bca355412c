# Human-designed EfficientNet-B0 on ImageNet with the recipe DynOPool uses
# for it (Appendix A.2: VGG-16's ImageNet hyper-parameters, Table B), at the
# baselines' 100 epochs. DynOPool Table 3 reports 71.8 % / 0.42 GMACs.
_base_ = [
    '../_base_/models/efficientnet-b0_imagenet.py',
    '../_base_/datasets/imagenet_bs64.py',
    '../_base_/schedules/imagenet_100e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
