"""The digits-VOC variants: stretch-h is exactly stretch-v transposed, the
stretched digits are taller than the plain ones, a root holds one
variant."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmdynopool.datasets import (VOC_VARIANTS, DigitsVOCDataset,
                                 build_digits_voc)


def read(root, name):
    img_dir = osp.join(root, 'JPEGImages')
    img_file = next(f for f in os.listdir(img_dir) if f.startswith(name))
    img = cv2.imread(osp.join(img_dir, img_file), cv2.IMREAD_UNCHANGED)
    seg = cv2.imread(
        osp.join(root, 'SegmentationClass', name + '.png'),
        cv2.IMREAD_UNCHANGED)
    return img, seg


def names(root, subset):
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       subset + '.txt')) as f:
        return f.read().split()


@pytest.mark.parametrize('size', [(96, 96), (64, 80)])
def test_stretch_h_is_stretch_v_transposed(tmp_path, size):
    # stretch_h at (H, W) is stretch_v at (W, H), every image and mask
    # transposed, bit for bit (both lossless PNG).
    v = build_digits_voc(
        str(tmp_path / 'v'),
        num_train=4,
        num_val=2,
        size=size[::-1],
        variant='stretch_v')
    h = build_digits_voc(
        str(tmp_path / 'h'),
        num_train=4,
        num_val=2,
        size=size,
        variant='stretch_h')
    for subset in ('train', 'val'):
        assert names(v, subset) == names(h, subset)
        for name in names(v, subset):
            img_v, seg_v = read(v, name)
            img_h, seg_h = read(h, name)
            assert img_h.shape[:2] == seg_h.shape == tuple(size)
            np.testing.assert_array_equal(img_h, img_v.transpose(1, 0, 2))
            np.testing.assert_array_equal(seg_h, seg_v.T)
            assert seg_v.max() > 0  # digits were drawn


def _digit_aspects(root):
    """Height / width of the bounding box of every labelled class in every
    image (a class may hold two digits: then the box covers both)."""
    ratios = []
    for subset in ('train', 'val'):
        for name in names(root, subset):
            seg = read(root, name)[1]
            for c in np.unique(seg)[1:]:
                ys, xs = np.nonzero(seg == c)
                ratios.append((np.ptp(ys) + 1) / (np.ptp(xs) + 1))
    return float(np.median(ratios))


def test_stretch_v_digits_are_taller(tmp_path):
    plain = build_digits_voc(str(tmp_path / 'p'), num_train=12, num_val=2)
    v = build_digits_voc(
        str(tmp_path / 'v'), num_train=12, num_val=2, variant='stretch_v')
    h = build_digits_voc(
        str(tmp_path / 'h'), num_train=12, num_val=2, variant='stretch_h')
    a_plain, a_v, a_h = (_digit_aspects(r) for r in (plain, v, h))
    # Plain digits are drawn 1.5x as tall as wide, stretched ones 3x.
    assert a_v > 1.5 * a_plain and a_v > 2
    assert a_h < 0.5
    assert os.listdir(osp.join(plain, 'JPEGImages'))[0].endswith('.jpg')
    assert os.listdir(osp.join(v, 'JPEGImages'))[0].endswith('.png')


def test_one_variant_per_root(tmp_path):
    root = build_digits_voc(
        str(tmp_path / 'd'), num_train=2, num_val=1, variant='stretch_v')
    with open(osp.join(root, 'digits_voc.json')) as f:
        meta = json.load(f)
    assert meta == dict(
        variant='stretch_v', num_train=2, num_val=1, size=[96, 96], seed=0)
    assert build_digits_voc(root, variant='stretch_v') == root  # reused
    with pytest.raises(
            ValueError,
            match='holds the digits-VOC variant '
            "'stretch_v', not 'plain'"):
        build_digits_voc(root)
    with pytest.raises(ValueError, match='variant must be one of'):
        build_digits_voc(str(tmp_path / 'x'), variant='stretch-v')
    assert VOC_VARIANTS == ('plain', 'stretch_v', 'stretch_h')


def test_dataset_variant(tmp_path):
    root = str(tmp_path / 'h')
    ds = DigitsVOCDataset(
        'ImageSets/Segmentation/val.txt',
        data_root=root,
        generate=dict(num_train=2, num_val=2),
        variant='stretch_h',
        pipeline=[])
    assert len(ds) == 2
    assert ds.get_data_info(0)['img_path'].endswith('val_00000.png')
    with pytest.raises(ValueError, match='not inside generate'):
        DigitsVOCDataset(
            'ImageSets/Segmentation/val.txt',
            data_root=root,
            generate=dict(variant='stretch_h'),
            pipeline=[])
    with pytest.raises(ValueError, match='variant must be one of'):
        DigitsVOCDataset(
            'ImageSets/Segmentation/val.txt',
            data_root=root,
            variant='transposed',
            pipeline=[])
