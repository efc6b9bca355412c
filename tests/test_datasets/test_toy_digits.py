"""The toy variants against hand computations, and the dataset around them."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from mmdynopool.datasets import ToyDigits, load_mnist_5k, make_toy_images
from mmdynopool.datasets.toy_digits import make_pairs, split_indices

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def digits():
    images, labels = load_mnist_5k()
    return images[::500][:6]  # one digit of six classes


def plain32(digit):
    import cv2
    return cv2.resize(digit, (32, 32), interpolation=cv2.INTER_LINEAR)


def close(a, b, tol=1):
    """uint8 rounding: at most ``tol`` grey levels apart."""
    return np.abs(a.astype(np.int32) - np.asarray(b).astype(np.int32)).max() \
        <= tol


def test_shapes(digits):
    shapes = {
        v: make_toy_images(digits, v).shape[1:]
        for v in ('plain', 'stretch_v', 'stretch_h', 'tile', 'large')
    }
    assert shapes == dict(
        plain=(32, 32),
        stretch_v=(64, 32),
        stretch_h=(32, 64),
        tile=(64, 64),
        large=(64, 64))


def test_stretch_is_2x_vertical(digits):
    out = make_toy_images(digits, 'stretch_v').astype(np.float64)
    for img, src in zip(out, digits):
        p = plain32(src).astype(np.float64)
        # Half-pixel bilinear 2x: row 2i samples i - 1/4, row 2i+1 i + 1/4
        # (clamped at the borders); columns are untouched.
        up = np.vstack([p[:1], p[:-1]])
        down = np.vstack([p[1:], p[-1:]])
        expect = np.empty((64, 32))
        expect[0::2] = 0.75 * p + 0.25 * up
        expect[1::2] = 0.75 * p + 0.25 * down
        assert close(img, expect)


def test_stretch_h_is_the_transpose_of_stretch_v(digits):
    # The control variant: the same construction on the transposed digit.
    v = make_toy_images(
        np.ascontiguousarray(digits.transpose(0, 2, 1)), 'stretch_v')
    h = make_toy_images(digits, 'stretch_h')
    assert h.shape == (len(digits), 32, 64)
    assert close(h, v.transpose(0, 2, 1))


def test_pairs_by_hand(digits):
    labels = np.arange(len(digits)) % 10
    images, ys = make_pairs(digits, labels)
    assert images.shape == (len(digits), 32, 32) and images.dtype == np.uint8
    # Every image is a left half once and a right half once (one cycle).
    left, right = ys // 10, ys % 10
    assert sorted(left.tolist()) == sorted(labels.tolist())
    assert sorted(right.tolist()) == sorted(labels.tolist())
    assert not np.any(left == right)
    for img, a, b in zip(images, left, right):
        pair = np.concatenate([plain32(digits[a]), plain32(digits[b])], 1)
        # Area 2x squeeze along the width: the mean of column pairs.
        squeezed = pair.reshape(32, 32, 2).astype(np.float64).mean(2)
        assert close(img, squeezed)
    with pytest.raises(ValueError, match='make_pairs needs >= 2 images'):
        make_pairs(digits[:1], labels[:1])
    with pytest.raises(ValueError, match='pairs: make_pairs'):
        make_toy_images(digits, 'pairs')


def test_pairs_dataset_has_100_classes():
    ds = ToyDigits('pairs', 'train', num_train=200, num_val=20)
    assert len(ds) == 200 and len(ds.metainfo['classes']) == 100
    assert ds.metainfo['classes'][37] == '37'
    ys = [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
    assert 0 <= min(ys) and max(ys) <= 99 and len(set(ys)) > 40
    # The 10-class variants keep their metainfo.
    assert len(ToyDigits('plain', 'val', 100, 20).metainfo['classes']) == 10


def test_tile_is_4x4_copies_of_the_16px_image(digits):
    out = make_toy_images(digits, 'tile')
    for img, src in zip(out, digits):
        # Area down-sampling by exactly 2 is the mean of 2x2 blocks.
        small = plain32(src).reshape(16, 2, 16, 2).astype(np.float64).mean(
            (1, 3))
        for a in range(4):
            for b in range(4):
                block = img[16 * a:16 * a + 16, 16 * b:16 * b + 16]
                assert np.array_equal(block, img[:16, :16])
        assert close(img[:16, :16], small)


def test_large_is_the_16px_image_enlarged(digits):
    tile, large = (make_toy_images(digits, v) for v in ('tile', 'large'))
    small = torch.from_numpy(tile[:, None, :16, :16]).double()
    # Independent reference: torch's half-pixel bilinear interpolation.
    ref = F.interpolate(
        small, size=(64, 64), mode='bilinear', align_corners=False)[:,
                                                                    0].numpy()
    assert close(large, ref)
    assert not close(large, tile, tol=10)


@pytest.mark.parametrize('variant,message', [('wide', 'variant'),
                                             ('', 'variant')])
def test_bad_variant(digits, variant, message):
    with pytest.raises(ValueError, match=message):
        make_toy_images(digits, variant)
    with pytest.raises(ValueError, match=f"{message}.*'{variant}'"):
        ToyDigits(variant)


def test_bad_input():
    with pytest.raises(ValueError, match='uint8'):
        make_toy_images(np.zeros((2, 28, 28)), 'plain')
    with pytest.raises(
            ValueError, match="split must be 'train' or 'val', "
            "got 'test'"):
        ToyDigits('plain', 'test')
    with pytest.raises(ValueError, match='num_train=4900 and num_val=1000'):
        ToyDigits('plain', num_train=4900, num_val=1000)


def test_split_is_balanced_and_disjoint():
    _, labels = load_mnist_5k()
    train = split_indices(labels, 'train', 3000, 1000)
    val = split_indices(labels, 'val', 3000, 1000)
    assert len(train) == 3000 and len(val) == 1000
    assert not set(train) & set(val)
    assert np.bincount(labels[val]).tolist() == [100] * 10
    # A prefix is balanced too (the classes are interleaved).
    assert np.bincount(labels[train[:50]]).tolist() == [5] * 10


def test_dataset_items():
    ds = ToyDigits('large', 'val', num_train=100, num_val=20)
    assert len(ds) == 20 and ds.metainfo['classes'][3] == '3'
    info = ds.get_data_info(7)
    img = info['img']
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], img[..., 2])
    digits, labels = load_mnist_5k()
    idx = split_indices(labels, 'val', 100, 20)[7]
    assert info['gt_label'] == labels[idx]
    assert np.array_equal(img[..., 0],
                          make_toy_images(digits[idx:idx + 1], 'large')[0])


def test_stretch_config_crops():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'toy',
                 'vgg11-slim_human_1xb64-20e_digits-stretch-v.py'))
    init_default_scope('mmpretrain')
    digits, _ = load_mnist_5k()
    stretched = make_toy_images(digits[:1], 'stretch_v')[0]
    stretched = np.repeat(stretched[..., None], 3, axis=2)
    train = Compose(cfg.train_dataloader.dataset.pipeline)
    val = Compose(cfg.val_dataloader.dataset.pipeline)
    tops = set()
    for _ in range(20):
        crop = train(dict(img=stretched.copy(), gt_label=0))['inputs']
        assert tuple(crop.shape) == (3, 32, 32)
        top = [
            t for t in range(33)
            if np.array_equal(crop[0].numpy(), stretched[t:t + 32, :, 0])
        ]
        assert top, 'the random crop is not a 32-row window'
        tops.add(top[0])
    assert len(tops) > 1
    crop = val(dict(img=stretched.copy(), gt_label=0))['inputs']
    assert np.array_equal(crop[0].numpy(), stretched[16:48, :, 0])
