"""Detection priors and RoI features that follow the learned sizes, against
mmdet's own classes (at fixed strides they must be the same) and hand-built
references (per-axis strides)."""
import math

import pytest
import torch

pytest.importorskip('mmdet')

from mmdet.models.roi_heads.roi_extractors import \
    SingleRoIExtractor  # noqa: E402
from mmdet.models.task_modules.prior_generators import \
    AnchorGenerator  # noqa: E402

from mmdynopool.models.resizing import _INPUT_SHAPE  # noqa: E402
from mmdynopool.models.task_modules import (  # noqa: E402
    DynamicStrideAnchorGenerator, DynamicStrideRoIExtractor, level_strides)

ANCHORS = dict(
    octave_base_scale=4,
    scales_per_octave=3,
    ratios=[0.5, 1.0, 2.0],
    strides=[8, 16, 32, 64, 128])


@pytest.fixture
def input_shape():
    """Set the current input shape as a resizing backbone would; reset
    afterwards."""
    tokens = []

    def set_shape(shape):
        tokens.append(_INPUT_SHAPE.set(shape))

    yield set_shape
    for token in reversed(tokens):
        _INPUT_SHAPE.reset(token)


def human_sizes(h, w, strides):
    return [(math.ceil(h / s), math.ceil(w / s)) for s in strides]


def test_level_strides(input_shape):
    assert level_strides([(24, 40)], (96, 160)) == [(4.0, 4.0)]
    assert level_strides([(7, 9)], (63, 63)) == [(7.0, 9.0)]  # (w, h)
    input_shape(None)  # no resizing backbone ran
    assert level_strides([(5, 5)]) is None
    input_shape((50, 20))  # one did: its input
    assert level_strides([(5, 5)]) == [(4.0, 10.0)]


class TestAnchorGenerator:

    def test_without_a_resizing_backbone_it_is_mmdets(self, input_shape):
        input_shape(None)
        ours = DynamicStrideAnchorGenerator(**ANCHORS)
        theirs = AnchorGenerator(**ANCHORS)
        sizes = human_sizes(100, 152, ANCHORS['strides'])
        for a, b in zip(
                ours.grid_priors(sizes, device='cpu'),
                theirs.grid_priors(sizes, device='cpu')):
            assert torch.equal(a, b)
        for a, b in zip(
                ours.valid_flags(sizes, (97, 150), 'cpu'),
                theirs.valid_flags(sizes, (97, 150), 'cpu')):
            assert torch.equal(a, b)

    def test_divisible_input_at_the_human_sizes_is_mmdets(self, input_shape):
        input_shape((256, 384))
        ours = DynamicStrideAnchorGenerator(**ANCHORS)
        theirs = AnchorGenerator(**ANCHORS)
        sizes = human_sizes(256, 384, ANCHORS['strides'])
        for a, b in zip(
                ours.grid_priors(sizes, device='cpu'),
                theirs.grid_priors(sizes, device='cpu')):
            assert torch.equal(a, b)
        idx = torch.tensor([0, 5, 17, 100])
        torch.testing.assert_close(
            ours.sparse_priors(idx, sizes[0], 0, device='cpu'),
            theirs.sparse_priors(idx, sizes[0], 0, device='cpu'))

    @pytest.mark.parametrize(
        'sizes',
        [
            [(23, 41), (11, 20), (6, 9), (3, 5), (2, 3)],  # learned, per axis
            [(40, 13), (19, 7), (9, 4), (5, 2), (3, 2)],
        ])
    def test_priors_tile_the_image_per_axis(self, sizes, input_shape):
        H, W = 200, 300
        input_shape((H, W))
        gen = DynamicStrideAnchorGenerator(**ANCHORS)
        for level, (priors, (fh, fw)) in enumerate(
                zip(gen.grid_priors(sizes, device='cpu'), sizes)):
            sw, sh = W / fw, H / fh
            cx = (priors[:, 0] + priors[:, 2]) / 2
            cy = (priors[:, 1] + priors[:, 3]) / 2
            # First centre at the origin, last one stride before the far
            # border: the image is tiled exactly, on both axes.
            assert cx.min() == pytest.approx(0, abs=1e-4)
            assert cy.min() == pytest.approx(0, abs=1e-4)
            assert cx.max() == pytest.approx(W - sw, rel=1e-5)
            assert cy.max() == pytest.approx(H - sh, rel=1e-5)
            assert W - cx.max() <= sw + 1e-4 and H - cy.max() <= sh + 1e-4
            # The anchors' shapes stay the configured ones.
            torch.testing.assert_close(priors[:9], gen.base_anchors[level])
        flags = gen.valid_flags(sizes, (H, W), 'cpu')
        assert all(f.all() for f in flags)  # every prior inside the pad
        half = gen.valid_flags(sizes, (H // 2, W), 'cpu')[0]
        rows = half.view(sizes[0][0], sizes[0][1], -1)[:, 0, 0]
        assert rows.sum() == math.ceil((H // 2) / (H / sizes[0][0]))


class TestRoIExtractor:

    CFG = dict(
        roi_layer=dict(
            type='RoIAlign', output_size=4, sampling_ratio=2, aligned=True),
        out_channels=2,
        featmap_strides=[4, 8])

    def rois(self):
        return torch.tensor([[0, 4., 8., 40., 52.], [0, 30., 10., 90., 70.],
                             [1, 0., 0., 150., 120.]])

    def test_at_fixed_strides_it_is_mmdets(self, input_shape):
        torch.manual_seed(0)
        feats = [torch.randn(2, 2, 32, 48), torch.randn(2, 2, 16, 24)]
        ours = DynamicStrideRoIExtractor(**self.CFG)
        theirs = SingleRoIExtractor(**self.CFG)
        # No resizing backbone: the configured strides.
        input_shape(None)
        torch.testing.assert_close(
            ours(feats, self.rois()), theirs(feats, self.rois()))
        input_shape((128, 192))  # the human sizes: the same strides
        torch.testing.assert_close(
            ours(feats, self.rois()), theirs(feats, self.rois()))

    def test_per_axis_strides_against_a_linear_map(self, input_shape):
        # On a feature map f(y, x) = 2 x + 3 y, RoIAlign's bilinear samples
        # average to f at each bin's centre: a hand reference in feature
        # coordinates x_f = x / stride_w - 0.5 (aligned), per axis.
        H, W = 120, 200
        fh, fw = 17, 41  # strides 120 / 17 and 200 / 41: not equal
        input_shape((H, W))
        ys, xs = torch.meshgrid(
            torch.arange(fh, dtype=torch.float32),
            torch.arange(fw, dtype=torch.float32),
            indexing='ij')
        fmap = (2 * xs + 3 * ys)[None, None].repeat(1, 2, 1, 1)
        cfg = dict(self.CFG, featmap_strides=[8])
        ext = DynamicStrideRoIExtractor(**cfg)
        rois = torch.tensor([[0, 20., 16., 100., 80.]])
        out = ext([fmap], rois)
        sw, sh = W / fw, H / fh
        x1, y1, x2, y2 = rois[0, 1:].tolist()
        bx = (x2 - x1) / sw / 4
        by = (y2 - y1) / sh / 4
        for i in range(4):
            for j in range(4):
                cx = x1 / sw - 0.5 + (j + 0.5) * bx
                cy = y1 / sh - 0.5 + (i + 0.5) * by
                assert out[0, 0, i, j].item() == pytest.approx(
                    2 * cx + 3 * cy, rel=1e-4)
        # mmdet's extractor at the nominal stride 8 is off on both axes.
        ref = SingleRoIExtractor(**cfg)([fmap], rois)
        assert (ref - out).abs().max() > 1
