# DynOPool-B ResNet-50 on CIFAR-100: the DynOPool-S config with Table
# A's -B lambda (0.0) and first-layer scale (0.8).
_base_ = './resnet50_dynopool-s_1xb128-250e_cifar100.py'
model = dict(backbone=dict(init_scales=[0.8, 0.5, 0.5]))
