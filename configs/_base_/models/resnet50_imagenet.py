_base_ = 'mmpretrain::_base_/models/resnet50.py'
