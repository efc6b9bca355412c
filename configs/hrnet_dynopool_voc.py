# The user's entry point: `python tools/train.py configs/hrnet_dynopool_voc.py`.
# Inherit from configs/voc/hrnet_dynopool_voc.py (`mmdynopool::voc/hrnet_dynopool_voc.py`).
_base_ = './voc/hrnet_dynopool_voc.py'
