from .dynamic_conv import DynamicConv2d, DynamicPool2d, dynamic_conv2d
from .dynopool import DynOPool2d, dynopool2d, dynopool_output_size
from .pooled_conv import PoolAfter, PooledConv2d, hold
from .shape_adaptor import (ShapeAdaptor, set_shape_adaptor_penalty,
                            shape_adaptor, shape_adaptor_init_alpha,
                            shape_adaptor_num_modules, shape_adaptor_penalty)

__all__ = [
    'DynOPool2d', 'dynopool2d', 'dynopool_output_size', 'PooledConv2d',
    'PoolAfter', 'hold', 'DynamicConv2d', 'DynamicPool2d', 'dynamic_conv2d',
    'ShapeAdaptor', 'shape_adaptor', 'shape_adaptor_init_alpha',
    'shape_adaptor_num_modules', 'shape_adaptor_penalty',
    'set_shape_adaptor_penalty'
]
