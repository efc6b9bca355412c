# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` (whose dicts mmengine marks
# with the scope 'mmdynopool', which has no registry) still builds.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',
    backbone=dict(
        type='VGG', depth=16, norm_cfg=dict(type='BN'), out_indices=(4, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
