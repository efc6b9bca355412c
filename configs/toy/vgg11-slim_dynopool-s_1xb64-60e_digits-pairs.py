# DynOPool-S slim VGG-11 on digits-pairs: lambda 0.4272 (8x the toy rule's
# 0.0534), the swept lambda whose final GMACs are closest to the human model's
# (docs/studies, toy studies: 2.50 vs 2.59 MMACs, +4.7 points top-1 over 5
# seeds, confirmed on 5 held-out seeds). Chosen on the sweep, as the paper
# chooses its DynOPool-S lambdas.
_base_ = './vgg11-slim_dynopool_1xb64-60e_digits-pairs.py'
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=0.4272, input_size=(32, 32)),
    dict(type='AlphaGradHook', space='log'),
    dict(type='ShapeLoggingHook', interval=47, input_size=(32, 32)),
]
