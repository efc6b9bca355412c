# Shape Adaptor MobileNetV2 on CIFAR-100, the authors' recipe
# (../_base_/schedules/shape-adaptor_cifar100.py).
_base_ = [
    './mobilenet-v2_human_1xb128-200e_cifar100.py',
    '../_base_/schedules/shape-adaptor_cifar100.py'
]
model = dict(backbone=dict(type='ShapeAdaptorMobileNetV2', input_size=32))
optim_wrapper = dict(optimizer=dict(nesterov=True))
