# DynOPool slim VGG-11 on digits-stretch-V.
# lambda: the paper's 2.33e-4 (CIFAR-stretch-V, supplementary)
# times 242.6 by the toy rule (docs/studies, toy studies): lambda * L_GMACs
# starts where the paper's does, GMACs[l] counted per batch (0.313 GMACs x
# 128 images for VGG-16 on CIFAR, 0.00258 x 64 here).
_base_ = './vgg11-slim_human_1xb64-20e_digits-stretch-v.py'
model = dict(backbone=dict(type='DynOPoolSlimVGG', init_scales=0.5))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.0565, input_size=(32, 32)),
    dict(type='AlphaGradHook', space='log'),
    dict(type='ShapeLoggingHook', interval=47, input_size=(32, 32)),
]
