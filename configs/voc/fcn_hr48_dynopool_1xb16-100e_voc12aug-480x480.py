# FCN HRNet-W48 with DynOPool on Pascal VOC 2012 aug (DynOPool Sec. 5.5 and
# Appendix A.2): every strided conv becomes DynOPool + stride-1 conv, one
# alpha per stream; alpha lr 8e-3 (half the weights'), no weight decay on
# alpha; lambda = 7e-5 on the GMACs loss.
_base_ = './fcn_hr48_human_1xb16-100e_voc12aug-480x480.py'

crop_size = (480, 480)
model = dict(backbone=dict(type='DynOPoolHRNet', init_scales=0.5))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'.alpha': dict(lr_mult=0.5, decay_mult=0.0)}))
custom_hooks = [
    dict(type='GMACsLossHook', loss_weight=7e-5, input_size=crop_size),
    dict(type='ShapeLoggingHook', interval=200, input_size=crop_size),
]
