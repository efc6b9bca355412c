# DynOPool slim VGG-11 on the plain 32x32 digits: every max-pool is a
# DynOPool of initial scale 0.5 (the human design at initialisation).
# lambda: DynOPool-S VGG-16 on CIFAR-100 (Table A, 2.2e-4) times 121.3, the
# ratio of VGG-16's GMACs to this network's (0.313 / 0.00258 at 32x32), so
# lambda * L_GMACs starts at the paper's value (see README, toy studies).
_base_ = './vgg11-slim_human_digits-plain.py'
model = dict(backbone=dict(type='DynOPoolSlimVGG', init_scales=0.5))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.0267, input_size=(32, 32)),
    dict(type='ShapeLoggingHook', interval=47, input_size=(32, 32)),
]
