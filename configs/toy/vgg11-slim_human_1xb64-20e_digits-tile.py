# Human slim VGG-11 on digits-tile (DynOPool Sec. 3.2): each digit at 16x16,
# tiled 4x4 into a 64x64 image.
_base_ = './vgg11-slim_human_1xb64-20e_digits-plain.py'
train_dataloader = dict(dataset=dict(variant='tile'))
val_dataloader = dict(dataset=dict(variant='tile'))
test_dataloader = val_dataloader
