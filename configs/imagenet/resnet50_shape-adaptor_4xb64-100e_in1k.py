# Shape Adaptor ResNet-50 on ImageNet, the authors' recipe
# (../_base_/schedules/shape-adaptor_imagenet.py).
_base_ = [
    './resnet50_human_4xb64-100e_in1k.py',
    '../_base_/schedules/shape-adaptor_imagenet.py'
]
model = dict(backbone=dict(type='ShapeAdaptorResNet', input_size=224))
optim_wrapper = dict(optimizer=dict(nesterov=True, weight_decay=1e-4))
