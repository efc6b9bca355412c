# Human slim VGG-11 on digits-stretch-H: the transpose of stretch-V (each
# 32x32 digit stretched 2x horizontally to 32x64, randomly cropped back to
# 32x32 when training, centre-cropped when evaluating). The control of the
# toy study: DynOPool's learned maps must be tall here where they are wide on
# stretch-V.
_base_ = './vgg11-slim_human_digits-plain.py'
train_dataloader = dict(
    dataset=dict(
        variant='stretch_h',
        pipeline=[dict(type='RandomCrop', crop_size=32),
                  dict(type='PackInputs')]))
val_dataloader = dict(
    dataset=dict(
        variant='stretch_h',
        pipeline=[dict(type='CenterCrop', crop_size=32),
                  dict(type='PackInputs')]))
test_dataloader = val_dataloader
