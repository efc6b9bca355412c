# Human slim VGG-11 on digits-stretch-V (DynOPool Sec. 3.1): each 32x32 digit
# stretched 2x vertically (64x32), randomly cropped back to 32x32 when
# training, centre-cropped when evaluating (a fixed validation set).
# _scope_: the registry these types live in, written out so that a config
# inheriting this one through `mmdynopool::` (whose dicts mmengine marks
# with the scope 'mmdynopool', which has no registry) still builds.
_base_ = './vgg11-slim_human_1xb64-20e_digits-plain.py'
train_dataloader = dict(
    dataset=dict(
        variant='stretch_v',
        pipeline=[
            dict(type='RandomCrop', crop_size=32, _scope_='mmpretrain'),
            dict(type='PackInputs', _scope_='mmpretrain')
        ]))
val_dataloader = dict(
    dataset=dict(
        variant='stretch_v',
        pipeline=[
            dict(type='CenterCrop', crop_size=32, _scope_='mmpretrain'),
            dict(type='PackInputs', _scope_='mmpretrain')
        ]))
test_dataloader = val_dataloader
