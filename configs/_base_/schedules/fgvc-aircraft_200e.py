# DynOPool Table B, FGVC-Aircraft: SGD 0.9, lr 1e-2 (alpha 1e-2), wd 5e-4,
# cosine annealing, batch 8, at the baselines' 200 epochs (Sec. 5.1: DynOPool
# "from 200 to 250"; its configs set 250). alpha gets no weight decay.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-2, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=1.0, decay_mult=0.0)}))
param_scheduler = dict(type='CosineAnnealingLR', T_max=200, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=8)
