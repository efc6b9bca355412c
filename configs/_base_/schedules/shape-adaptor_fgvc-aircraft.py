# Shape Adaptor on FGVC-Aircraft as its authors run it (Shape Adaptor Sec.
# 4.1 and lorenmt/shape-adaptor), added to a human-designed config (its
# second `_base_`): N from Eq. 3 (floor), search space (0.5, 1),
# D_last = 2, D_out = 8; alpha in its own pass every 20 batches with
# Nesterov SGD (lr 0.1, cosine), memory limit D_limit = 30 (fine-grained
# 224 px data). The config itself turns its backbone into the Shape Adaptor
# variant and its weights' SGD into Nesterov SGD (lr 1e-2, wd 5e-4,
# MobileNetV2 4e-5) at the baselines' 200 epochs.
custom_hooks = [
    dict(
        type='ShapeAdaptorHook', alpha_interval=20, input_size=224,
        d_limit=30),
    dict(type='ShapeLoggingHook', interval=500, input_size=(224, 224)),
]
# alpha gets no gradient in most weight passes.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)
