# Shape Adaptor slim VGG-11 on the plain 32x32 digits (Shape Adaptor Sec.
# 4.1): the max-pools removed, N = 4 adaptors from Eq. 3 (D_in 32, D_last 2),
# search space (0.5, 1), D_out = 8. alpha takes a step in its own pass
# (the authors' Nesterov SGD) every 2 batches instead of the paper's 20, so
# it gets ~480 updates in this short schedule.
_base_ = './vgg11-slim_human_1xb64-20e_digits-plain.py'
model = dict(backbone=dict(type='ShapeAdaptorSlimVGG', input_size=32))
custom_hooks = [
    dict(type='ShapeAdaptorHook', alpha_interval=2),
    dict(type='ShapeLoggingHook', interval=47, input_size=(32, 32)),
]
