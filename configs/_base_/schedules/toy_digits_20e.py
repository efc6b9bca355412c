# The CPU schedule of the toy studies: SGD 0.9, lr 0.05, wd 5e-4, cosine over
# 20 epochs (47 iterations each at batch 64), long enough that alpha settles
# (docs/studies, toy studies: alpha trajectories). alpha: no weight decay and
# 0.1x the learning rate (DynOPool Table B's ratio for CIFAR).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.1, decay_mult=0.0)}))
param_scheduler = dict(type='CosineAnnealingLR', T_max=20, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=20)
val_cfg = dict()
test_cfg = dict()
