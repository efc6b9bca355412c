# FGVC-Aircraft (100 variants, mmpretrain's FGVCAircraft: trainval 6,667 /
# test 3,333 images) at 224 px, batch 8 on one device (DynOPool Table B).
# Data in data/fgvc-aircraft-2013b as mmpretrain documents; nothing is
# downloaded. Pipelines as the Shape Adaptor authors' for 224 px data:
# shorter side 256, random 224 crop and flip for training, centre crop for
# testing. _scope_: see configs/_base_/models/vgg16_imagenet.py.
data_preprocessor = dict(
    num_classes=100,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile', _scope_='mmpretrain'),
    dict(type='ResizeEdge', scale=256, edge='short', _scope_='mmpretrain'),
    dict(type='RandomCrop', crop_size=224, _scope_='mmpretrain'),
    dict(
        type='RandomFlip',
        prob=0.5,
        direction='horizontal',
        _scope_='mmpretrain'),
    dict(type='PackInputs', _scope_='mmpretrain'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', _scope_='mmpretrain'),
    dict(type='ResizeEdge', scale=256, edge='short', _scope_='mmpretrain'),
    dict(type='CenterCrop', crop_size=224, _scope_='mmpretrain'),
    dict(type='PackInputs', _scope_='mmpretrain'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(
        type='FGVCAircraft',
        data_root='data/fgvc-aircraft-2013b',
        split='trainval',
        pipeline=train_pipeline,
        _scope_='mmpretrain'),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(
        type='FGVCAircraft',
        data_root='data/fgvc-aircraft-2013b',
        split='test',
        pipeline=test_pipeline,
        _scope_='mmpretrain'),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5), _scope_='mmpretrain')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
