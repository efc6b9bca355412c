# The human baseline of the DynOPool HRNet detector: mmdet's Faster R-CNN
# HRNetV2p-W32 + HRFPN 1x on COCO as mmdet ships it (8 GPUs x 2 images).
_base_ = 'mmdet::hrnet/faster-rcnn_hrnetv2p-w32-1x_coco.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# No download at run time: mmdet's config starts from the ImageNet HRNetV2-W32
# (open-mmlab://msra/hrnetv2_w32); point init_cfg (or load_from) at a local
# copy of it.
model = dict(backbone=dict(init_cfg=None))
randomness = dict(seed=0)
