# ImageNet, 64 images per device on 4 devices (DynOPool Table B).
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs64.py'
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
