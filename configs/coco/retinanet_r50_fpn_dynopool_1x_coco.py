# RetinaNet R-50-FPN 1x on COCO with DynOPool in the backbone (rule B, the
# ImageNet DynOPool ResNet-50: a shared alpha per strided stage, the stem's
# conv at stride 1 + one DynOPool of 0.25) and priors that follow the learned
# sizes (DynamicStrideAnchorGenerator). Alpha: the ResNet-50 ImageNet recipe
# (DynOPool Table B: its lr 0.05x the weights', no weight decay; lambda 8e-5 of
# Table A per batch). The human model's checkpoints load with only the
# dynopools.<i>.alpha keys missing. _scope_: these types live in mmdet's
# registries (see docs/user_guides/use_in_your_project.md).
_base_ = './retinanet_r50_fpn_human_1x_coco.py'
model = dict(
    backbone=dict(type='DynOPoolResNet', _scope_='mmdet'),
    bbox_head=dict(
        anchor_generator=dict(
            type='DynamicStrideAnchorGenerator', _scope_='mmdet')))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.05, decay_mult=0.0)}))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=8e-5, input_size=(800, 1333)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(800, 1333)),
]
