_base_ = 'mmpretrain::_base_/models/mobilenet_v2_1x.py'
