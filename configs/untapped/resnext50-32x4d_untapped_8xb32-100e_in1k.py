# mmpretrain's ResNeXt-50 32x4d on ImageNet for the oracle tool (Untapped
# Potential Table 1; dynamic layers as in its appendix, found by
# convert_to_dynamic). Data in data/imagenet as for mmpretrain; no weights are
# downloaded: pass a local checkpoint (the one mmpretrain's metafile.yml lists
# for this config) to tools/analysis/oracle.py.
_base_ = 'mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
