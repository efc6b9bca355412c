"""Detection priors and RoI features that follow learned feature-map sizes
(mmdet's registries; only where mmdet is installed: the 'detection' extra)."""
try:
    import mmdet  # noqa: F401
except ImportError:  # detection is optional
    __all__ = []
else:
    from .dynamic_strides import (DynamicStrideAnchorGenerator,
                                  DynamicStrideRoIExtractor, level_strides)
    __all__ = [
        'DynamicStrideAnchorGenerator', 'DynamicStrideRoIExtractor',
        'level_strides'
    ]
