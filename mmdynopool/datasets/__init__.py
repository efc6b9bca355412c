from .digits_coco import *  # noqa: F401,F403  (DigitsCocoDataset with mmdet)
from .digits_coco import __all__ as _coco_all
from .digits_voc import (VOC_VARIANTS, DigitsVOCDataset, build_digits_voc,
                         load_mnist_5k)
from .toy_digits import TOY_VARIANTS, ToyDigits, make_toy_images

__all__ = [
    'DigitsVOCDataset', 'build_digits_voc', 'load_mnist_5k', 'ToyDigits',
    'make_toy_images', 'TOY_VARIANTS', 'VOC_VARIANTS'
]
__all__ += _coco_all
