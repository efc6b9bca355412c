# The user's entry point: `python tools/train.py configs/hrnet_human_voc.py`.
# Inherit from configs/voc/hrnet_human_voc.py (`mmdynopool::voc/hrnet_human_voc.py`).
_base_ = './voc/hrnet_human_voc.py'
