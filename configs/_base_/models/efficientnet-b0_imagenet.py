# mmpretrain's EfficientNet-B0 (its own GAP + one FC head). _scope_: see
# vgg16_imagenet.py.
_base_ = 'mmpretrain::_base_/models/efficientnet_b0.py'
model = dict(_scope_='mmpretrain')
