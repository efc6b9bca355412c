# Human slim VGG-11 on digits-pairs: two digits side by side squeezed to
# 32x32, 100 classes ('00'-'99'), 1,000 training images (10 a class).
# Unsaturated: the human model stays well below 95 % top-1 (docs/studies, toy
# studies). 60 epochs of 16 iterations: as many steps as the 20-epoch
# schedule of the 3,000-image variants.
_base_ = './vgg11-slim_human_1xb64-20e_digits-plain.py'
model = dict(head=dict(num_classes=100))
data_preprocessor = dict(num_classes=100)
train_dataloader = dict(dataset=dict(variant='pairs', num_train=1000))
val_dataloader = dict(dataset=dict(variant='pairs', num_train=1000))
test_dataloader = val_dataloader
param_scheduler = dict(T_max=60)
train_cfg = dict(max_epochs=60, val_interval=60)
