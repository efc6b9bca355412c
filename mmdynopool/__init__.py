from mmengine.config.utils import MODULE2PACKAGE

from .version import __version__

# mmengine resolves `_base_ = 'pkg::dir/file.py'` only for the packages in
# this table; adding ours lets a downstream config inherit
# `mmdynopool::voc/hrnet_dynopool_voc.py` in any process that has imported
# mmdynopool before parsing it (our tools do).
MODULE2PACKAGE.setdefault('mmdynopool', 'mmdynopool')

from . import datasets, engine, models  # noqa: E402,F401  (registrations)

__all__ = ['__version__']
