# DynOPool slim VGG-11 on digits-pairs (100 classes, unsaturated).
# lambda: the paper's 2.2e-4 (VGG-16 DynOPool-S on CIFAR-100, Table A)
# times 242.6 by the toy rule (docs/studies, toy studies): lambda * L_GMACs
# starts where the paper's does, GMACs[l] counted per batch (0.313 GMACs x
# 128 images for VGG-16 on CIFAR, 0.00258 x 64 here).
_base_ = './vgg11-slim_human_1xb64-60e_digits-pairs.py'
model = dict(backbone=dict(type='DynOPoolSlimVGG', init_scales=0.5))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.0534, input_size=(32, 32)),
    dict(type='AlphaGradHook', space='log'),
    dict(type='ShapeLoggingHook', interval=47, input_size=(32, 32)),
]
