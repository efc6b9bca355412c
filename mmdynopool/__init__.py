from mmengine.config.utils import MODULE2PACKAGE

from .version import __version__

# mmengine resolves `_base_ = 'pkg::dir/file.py'` only for the packages in
# this table, so `mmdynopool::` works in any process that has imported
# mmdynopool before parsing the config (our tools, scripts; in mmseg's or
# mmpretrain's own tools see docs/user_guides/use_in_your_project.md). The
# value names a module, not the distribution: mmengine asks pkg_resources
# for that name first and falls back to the module's folder. The
# distribution's location is site-packages for an editable install (wrong:
# no .mim there), the module's folder is the package in every install.
MODULE2PACKAGE['mmdynopool'] = 'mmdynopool.version'

from . import datasets, engine, models  # noqa: E402,F401  (registrations)
from .utils import allow_mmengine_checkpoints  # noqa: E402

# torch >= 2.6 loads with weights_only=True: allow exactly the globals that
# mmengine writes into checkpoints, so mmseg's / mmpretrain's own test tools
# load our checkpoints once custom_imports has imported mmdynopool.
allow_mmengine_checkpoints()

__all__ = ['__version__']
