_base_ = 'mmpretrain::_base_/models/resnet50_cifar.py'
model = dict(head=dict(num_classes=100))
