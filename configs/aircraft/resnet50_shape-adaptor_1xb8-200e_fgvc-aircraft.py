# Shape Adaptor ResNet-50 on FGVC-Aircraft, the authors' recipe
# (../_base_/schedules/shape-adaptor_fgvc-aircraft.py).
_base_ = [
    './resnet50_human_1xb8-200e_fgvc-aircraft.py',
    '../_base_/schedules/shape-adaptor_fgvc-aircraft.py'
]
model = dict(backbone=dict(type='ShapeAdaptorResNet', input_size=224))
optim_wrapper = dict(optimizer=dict(nesterov=True))
