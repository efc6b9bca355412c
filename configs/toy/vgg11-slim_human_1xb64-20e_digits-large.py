# Human slim VGG-11 on digits-large (DynOPool Sec. 3.2): each digit at 16x16,
# enlarged (bilinear) to 64x64.
_base_ = './vgg11-slim_human_1xb64-20e_digits-plain.py'
train_dataloader = dict(dataset=dict(variant='large'))
val_dataloader = dict(dataset=dict(variant='large'))
test_dataloader = val_dataloader
