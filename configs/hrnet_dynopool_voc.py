# The one top-level alias, the command our users type: python tools/train.py
# configs/hrnet_dynopool_voc.py It is
# configs/voc/fcn_hr48_dynopool_1xb16-100e_voc12aug-480x480.py (inherit that
# name, `mmdynopool::voc/fcn_hr48_dynopool_1xb16-100e_voc12aug-480x480.py`, in
# other configs); only the default work_dir (work_dirs/hrnet_dynopool_voc)
# differs.
_base_ = './voc/fcn_hr48_dynopool_1xb16-100e_voc12aug-480x480.py'
