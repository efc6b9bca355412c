from .backbones import *  # noqa: F401,F403
from .backbones import __all__ as _backbones_all
from .convert import convert_to_dynopool
from .dynamic import DynamicLayers, convert_to_dynamic
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .necks import *  # noqa: F401,F403
from .necks import __all__ as _necks_all
from .task_modules import *  # noqa: F401,F403
from .task_modules import __all__ as _task_modules_all

__all__ = list(_layers_all) + list(_backbones_all) + list(
    _task_modules_all) + list(_necks_all) + [
        'convert_to_dynopool', 'convert_to_dynamic', 'DynamicLayers'
    ]
