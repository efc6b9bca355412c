# mmpretrain's ResNet-50 on ImageNet for the oracle tool (Untapped
# Potential Table 1). Data in data/imagenet as for mmpretrain; no weights are
# downloaded: pass a local checkpoint, e.g. mmpretrain's
# resnet50_8xb32_in1k_20210831-ea4938fc.pth, to tools/analysis/oracle.py.
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
