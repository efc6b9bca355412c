# Random option fine-tuning (Untapped Potential Sec. 3.4) of
# resnet18-slim_untapped_1xb64-10e_digits-plain.py: every batch draws a random
# stride permutation of the ABCD layers; 3 epochs at lr 1e-3 (the paper: 15
# epochs, 1e-3 -> 1e-4).
_base_ = './resnet18-slim_untapped_1xb64-10e_digits-plain.py'
load_from = ('work_dirs/resnet18-slim_untapped_1xb64-10e_digits-plain/'
             'epoch_10.pth')
custom_hooks = [dict(type='RandomOptionHook', attributes=('stride', ))]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR',
    milestones=[2],
    gamma=0.1,
    by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=3)
default_hooks = dict(checkpoint=dict(interval=3))
