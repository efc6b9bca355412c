# Random option fine-tuning of an ImageNet ResNet-50 with dynamic strides in
# its ABCD layers (Untapped Potential Sec. 3.4 and appendix): 15 epochs, SGD
# momentum 0.9, weight decay 1e-4, lr 1e-3 decayed to 1e-4 after 10 epochs
# (batch 8 x 32 as mmpretrain's base). Set load_from to the pretrained
# checkpoint.
_base_ = './resnet50_untapped_8xb32-100e_in1k.py'
load_from = None
custom_hooks = [dict(type='RandomOptionHook', attributes=('stride', ))]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR',
    by_epoch=True,
    milestones=[10],
    gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=15, val_interval=1)
