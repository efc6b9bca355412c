# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` (whose dicts mmengine marks
# with the scope 'mmdynopool', which has no registry) still builds.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',
    backbone=dict(type='MobileNetV2_CIFAR', widen_factor=1.0),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=1280,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
