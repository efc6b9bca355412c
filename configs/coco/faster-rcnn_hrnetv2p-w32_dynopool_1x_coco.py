# Faster R-CNN HRNetV2p-W32 + HRFPN 1x on COCO with DynOPool in the backbone
# (rule C, one shared alpha per stream and one for the stem, as for
# segmentation), HRFPN fusing the streams at their learned sizes
# (DynamicSizeHRFPN: mmdet's HRFPN assumes each stream half the previous),
# RPN priors and RoI features that follow the learned sizes.
# Alpha: the VOC HRNet recipe of the paper (half the weights' lr, no decay);
# lambda: the paper's VOC value, not tuned for detection.
_base_ = './faster-rcnn_hrnetv2p-w32_human_1x_coco.py'
model = dict(
    backbone=dict(type='DynOPoolHRNet', _scope_='mmdet'),
    neck=dict(type='DynamicSizeHRFPN', _scope_='mmdet'),
    rpn_head=dict(
        anchor_generator=dict(
            type='DynamicStrideAnchorGenerator', _scope_='mmdet')),
    roi_head=dict(
        bbox_roi_extractor=dict(
            type='DynamicStrideRoIExtractor', _scope_='mmdet')))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.5, decay_mult=0.0)}))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=7e-5, input_size=(800, 1333)),
    dict(type='ShapeLoggingHook', interval=500, input_size=(800, 1333)),
]
