# Shape Adaptor MobileNetV2 on ImageNet, the authors' recipe
# (../_base_/schedules/shape-adaptor_imagenet.py).
_base_ = [
    './mobilenet-v2_human_4xb64-100e_in1k.py',
    '../_base_/schedules/shape-adaptor_imagenet.py'
]
model = dict(backbone=dict(type='ShapeAdaptorMobileNetV2', input_size=224))
optim_wrapper = dict(optimizer=dict(nesterov=True))
