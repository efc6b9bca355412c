"""Necks that take learned feature-map sizes (mmdet's registry; only where
mmdet is installed: the 'detection' extra)."""
try:
    import mmdet  # noqa: F401
except ImportError:  # detection is optional
    __all__ = []
else:
    from .hrfpn import DynamicSizeHRFPN
    __all__ = ['DynamicSizeHRFPN']
