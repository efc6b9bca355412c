from .version import __version__
from . import datasets, engine, models  # noqa: F401  (registrations)

__all__ = ['__version__']
