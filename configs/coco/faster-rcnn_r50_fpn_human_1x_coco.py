# The human baseline of the DynOPool Faster R-CNN: mmdet's Faster R-CNN
# R-50-FPN 1x on COCO as mmdet ships it (8 GPUs x 2 images, 12 epochs).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# No download at run time: mmdet's config starts from torchvision's
# ImageNet ResNet-50; point init_cfg (or load_from) at a local copy of it.
model = dict(backbone=dict(init_cfg=None))
randomness = dict(seed=0)
