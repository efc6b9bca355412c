from .version import __version__
from . import models  # noqa: F401  (runs the registrations)

__all__ = ['__version__']
