from .digits_voc import DigitsVOCDataset, build_digits_voc, load_mnist_5k

__all__ = ['DigitsVOCDataset', 'build_digits_voc', 'load_mnist_5k']
