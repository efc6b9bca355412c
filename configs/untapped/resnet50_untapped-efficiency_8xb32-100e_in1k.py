# The efficiency study of Untapped Potential Sec. 4.6 / Fig. 6: ResNet-50 with
# dynamic strides {1, 2, 3, 4} and kernel sizes {1, 3} in its ABCD layers.
# tools/analysis/oracle.py reads `oracle` from the config (its command-line
# arguments override it):
#   python tools/analysis/oracle.py \
#       configs/untapped/resnet50_untapped-efficiency_8xb32-100e_in1k.py \
#       CKPT --device cuda
_base_ = './resnet50_untapped_8xb32-100e_in1k.py'
oracle = dict(
    attributes=('stride', 'kernel_size'),
    options=dict(stride=(1, 2, 3, 4), kernel_size=(1, 3)),
    efficiency='static')
