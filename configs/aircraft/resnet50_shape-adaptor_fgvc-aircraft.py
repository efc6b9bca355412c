# Shape Adaptor resnet50 on FGVC-Aircraft as its authors run it (Shape Adaptor
# Sec. 4.1 and lorenmt/shape-adaptor): N from Eq. 3 (floor), search
# space (0.5, 1), D_last = 2, D_out = 8; alpha in its own pass every
# 20 batches with Nesterov SGD (lr 0.1, cosine), memory limit D_limit = 30
# (fine-grained 224 px data); weights with Nesterov SGD, lr 1e-2, wd 0.0005,
# at the baselines' 200 epochs.
_base_ = './resnet50_human_fgvc-aircraft.py'
model = dict(backbone=dict(type='ShapeAdaptorResNet', input_size=224))
optim_wrapper = dict(optimizer=dict(nesterov=True, weight_decay=0.0005))
custom_hooks = [
    dict(type='ShapeAdaptorHook', alpha_interval=20, input_size=224,
         d_limit=30),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
# alpha gets no gradient in most weight passes.
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)
