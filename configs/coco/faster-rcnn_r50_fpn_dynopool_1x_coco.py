# Faster R-CNN R-50-FPN 1x on COCO with DynOPool in the backbone, RPN priors
# and RoI features that follow the learned sizes (DynamicStrideAnchorGenerator,
# DynamicStrideRoIExtractor). Alpha: the ResNet-50 ImageNet recipe (see the
# RetinaNet config).
_base_ = './faster-rcnn_r50_fpn_human_1x_coco.py'
model = dict(
    backbone=dict(type='DynOPoolResNet', _scope_='mmdet'),
    rpn_head=dict(
        anchor_generator=dict(
            type='DynamicStrideAnchorGenerator', _scope_='mmdet')),
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='DynamicStrideRoIExtractor', _scope_='mmdet')))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.05, decay_mult=0.0)}))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=8e-5, input_size=(800, 1333)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(800, 1333)),
]
