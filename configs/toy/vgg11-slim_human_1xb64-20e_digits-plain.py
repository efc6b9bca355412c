# Human-designed slim VGG-11 on the plain 32x32 digits (toy studies).
_base_ = [
    '../_base_/models/vgg11-slim_digits.py',
    '../_base_/datasets/toy_digits_bs64.py',
    '../_base_/schedules/toy_digits_20e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
default_hooks = dict(
    logger=dict(interval=10),
    # Two kept: mmengine deletes the oldest before writing the newest, so a
    # job killed during that write still leaves one to resume from.
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# Seeded (python, numpy, torch): the same config gives the same run.
randomness = dict(seed=0)
