# Random option fine-tuning of an ImageNet ResNet-50 with dynamic kernel size
# in its ABCD layers (Untapped Potential Sec. 3.4 and Table 2): the stride
# recipe of resnet50_rof-stride_8xb32-15e_in1k.py, each batch drawing a random
# kernel size permutation. Set load_from to the pretrained checkpoint.
_base_ = './resnet50_rof-stride_8xb32-15e_in1k.py'
custom_hooks = [dict(type='RandomOptionHook', attributes=('kernel_size', ))]
