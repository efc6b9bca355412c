# A VGG-style CIFAR network small enough for CPU training: mmpretrain's VGG-11
# layout (1, 1, 2, 2, 2 conv-BN-ReLU per stage, 2x max-pools between stages,
# no last pool, one FC layer as DynOPool A.1) at 1/8 of the widths: 8, 16,
# 32, 64, 64 channels. 2.6 MMACs at 32x32 (VGG-16 CIFAR: 313 MMACs).
# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` (whose dicts mmengine marks
# with the scope 'mmdynopool', which has no registry) still builds.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',
    backbone=dict(
        type='SlimVGG',
        depth=11,
        widen_factor=0.125,
        norm_cfg=dict(type='BN'),
        with_last_pool=False,
        out_indices=(4, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
