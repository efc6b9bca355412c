# Shape Adaptor ResNet-50 on CIFAR-100, the authors' recipe
# (../_base_/schedules/shape-adaptor_cifar100.py).
_base_ = [
    './resnet50_human_1xb128-200e_cifar100.py',
    '../_base_/schedules/shape-adaptor_cifar100.py'
]
model = dict(backbone=dict(type='ShapeAdaptorResNet_CIFAR', input_size=32))
optim_wrapper = dict(optimizer=dict(nesterov=True))
