# Human slim VGG-11 on digits-stretch-H: the transpose of stretch-V (each
# 32x32 digit stretched 2x horizontally to 32x64; the same random / centre
# crops back to 32x32). The control of the toy study: DynOPool's learned maps
# must be tall here where they are wide on stretch-V.
_base_ = './vgg11-slim_human_1xb64-20e_digits-stretch-v.py'
train_dataloader = dict(dataset=dict(variant='stretch_h'))
val_dataloader = dict(dataset=dict(variant='stretch_h'))
test_dataloader = val_dataloader
