# DynOPool Table B, ImageNet: SGD 0.9, lr 0.1 (alpha 5e-3), wd 5e-4, cosine
# annealing, 4 x 64 images, AMP (paper A.2), at the baselines' 100 epochs
# (Shape Adaptor's ImageNet recipe; DynOPool's configs set 120, Table B).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.05, decay_mult=0.0)}))
param_scheduler = dict(type='CosineAnnealingLR', T_max=100, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
