# CIFAR-100, batch 128 on one device (DynOPool Table B). Data must already be
# in data/cifar100 (python version); nothing is downloaded.
_base_ = 'mmpretrain::_base_/datasets/cifar100_bs16.py'
train_dataloader = dict(batch_size=128, dataset=dict(download=False))
val_dataloader = dict(batch_size=128, dataset=dict(download=False))
test_dataloader = val_dataloader
