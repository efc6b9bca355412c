"""DynOPool detectors (mmdet 3.x) against the human ones they start from:
checkpoint keys, feature sizes, priors and outputs at initialisation; priors
that tile the image once the scales moved; the GMACs loss counting the neck
and the heads."""
import os.path as osp

import pytest
import torch

pytest.importorskip('mmdet')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmdynopool.models import DynOPool2d  # noqa: E402

ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
DET = osp.join(ROOT, 'configs', 'digits_det')
HUMAN = osp.join(
    DET, 'retinanet_r18-slim_human_1xb8-1200iter_digits-coco-'
    '128x128.py')
DYNOPOOL = HUMAN.replace('_human_', '_dynopool_')


def build(path, **model):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(path)
    cfg.model.update(model)
    torch.manual_seed(0)
    net = MODELS.build(cfg.model)
    net.eval()
    return net


@pytest.fixture(scope='module')
def pair():
    human, dyno = build(HUMAN), build(DYNOPOOL)
    missing, unexpected = dyno.load_state_dict(
        human.state_dict(), strict=False)
    return human, dyno, missing, unexpected


def test_human_checkpoint_loads_with_only_alpha_missing(pair):
    _, dyno, missing, unexpected = pair
    assert unexpected == []
    assert sorted(missing) == [
        f'backbone.dynopools.{i}.alpha' for i in range(4)
    ]


def test_equal_to_the_human_detector_at_initialisation(pair):
    human, dyno, _, _ = pair
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        feats_h = human.extract_feat(x)
        feats_d = dyno.extract_feat(x)  # records the input shape
        assert [f.shape for f in feats_h] == [f.shape for f in feats_d]
        sizes = [f.shape[-2:] for f in feats_d]
        priors_h = human.bbox_head.prior_generator.grid_priors(
            sizes, device='cpu')
        priors_d = dyno.bbox_head.prior_generator.grid_priors(
            sizes, device='cpu')
        for a, b in zip(priors_h, priors_d):
            assert torch.equal(a, b)
        # The same features through both necks' heads: the same outputs
        # and the same detections (the backbones differ by design: rule B
        # pools a stride-1 conv where the human conv strides).
        out_h = human.bbox_head(feats_h)
        out_d = dyno.bbox_head(feats_h)
        for a, b in zip(out_h, out_d):
            for u, v in zip(a, b):
                assert torch.equal(u, v)
        metas = [
            dict(
                img_shape=(128, 128),
                scale_factor=(1.0, 1.0),
                ori_shape=(128, 128),
                batch_input_shape=(128, 128))
        ] * 2
        det_h = human.bbox_head.predict_by_feat(*out_h, batch_img_metas=metas)
        det_d = dyno.bbox_head.predict_by_feat(*out_d, batch_img_metas=metas)
        for a, b in zip(det_h, det_d):
            assert torch.equal(a.bboxes, b.bboxes)
            assert torch.equal(a.scores, b.scores)


@pytest.mark.parametrize('shape', [(128, 128), (96, 160)])
def test_priors_tile_the_image_after_the_scales_moved(shape):
    dyno = build(DYNOPOOL)
    with torch.no_grad():
        for p, a in zip(dyno.backbone.dynopools,
                        ([3.3, 5.1], [2.6, 1.7], [1.6, 2.4], [2.2, 1.9])):
            p.alpha.copy_(torch.tensor(a))
        x = torch.rand(1, 3, *shape)
        feats = dyno.extract_feat(x)
    H, W = shape
    sizes = [f.shape[-2:] for f in feats]
    assert len({(h / w) for h, w in sizes}) > 1  # not the human pyramid
    priors = dyno.bbox_head.prior_generator.grid_priors(sizes, device='cpu')
    for p, (fh, fw) in zip(priors, sizes):
        sw, sh = W / fw, H / fh
        cx = (p[:, 0] + p[:, 2]) / 2
        cy = (p[:, 1] + p[:, 3]) / 2
        assert abs(cx.min()) <= 1e-4 and abs(cy.min()) <= 1e-4
        assert 0 < W - cx.max() <= sw + 1e-3
        assert 0 < H - cy.max() <= sh + 1e-3
    # And predictions run end to end at the learned sizes.
    from mmdet.structures import DetDataSample
    sample = DetDataSample(
        metainfo=dict(
            img_shape=shape,
            ori_shape=shape,
            scale_factor=(1.0, 1.0),
            batch_input_shape=shape,
            pad_shape=shape))
    with torch.no_grad():
        out = dyno.predict(x, [sample])
    assert out[0].pred_instances.bboxes.shape[-1] == 4


def test_faster_rcnn_with_dynamic_rpn_and_roi_features():
    """A two-stage DynOPool detector (the COCO config's replacements on the
    digits network): one training step and one prediction at learned,
    non-square scales."""
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    init_default_scope('mmdet')
    import mmdet
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
            'faster-rcnn_r50_fpn.py'))
    m = cfg.model
    m.backbone.update(
        type='DynOPoolResNet',
        depth=18,
        stem_channels=16,
        base_channels=16,
        init_cfg=None,
        norm_eval=False,
        frozen_stages=-1)
    m.neck.update(in_channels=[16, 32, 64, 128], out_channels=32)
    m.rpn_head.update(in_channels=32, feat_channels=32)
    m.rpn_head.anchor_generator.type = 'DynamicStrideAnchorGenerator'
    m.roi_head.bbox_roi_extractor.update(
        type='DynamicStrideRoIExtractor', out_channels=32)
    m.roi_head.bbox_head.update(
        in_channels=32, fc_out_channels=64, num_classes=10)
    torch.manual_seed(0)
    net = MODELS.build(m)
    with torch.no_grad():
        for p, a in zip(net.backbone.dynopools,
                        ([3.3, 5.1], [2.6, 1.7], [1.6, 2.4], [2.2, 1.9])):
            p.alpha.copy_(torch.tensor(a))
    shape = (96, 128)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=shape,
            ori_shape=shape,
            scale_factor=(1.0, 1.0),
            batch_input_shape=shape,
            pad_shape=shape))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 12., 40., 70.], [60., 20., 90., 50.]]),
        labels=torch.tensor([3, 7]))
    net.train()
    losses = net.loss(torch.rand(1, 3, *shape), [sample])
    total = sum(
        v if torch.is_tensor(v) else sum(v) for k, v in losses.items()
        if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    assert all(p.alpha.grad is not None for p in net.backbone.dynopools)
    net.eval()
    with torch.no_grad():
        out = net.predict(torch.rand(1, 3, *shape), [sample])
    assert out[0].pred_instances.bboxes.shape[-1] == 4


def test_gmacs_counter_counts_neck_and_head():
    from mmdynopool.engine import GMACsCounter
    dyno = build(DYNOPOOL)
    counter = GMACsCounter(
        dyno, (128, 128), forward=lambda x: dyno(x, mode='tensor'))
    pools = {id(p) for p in dyno.backbone.dynopools}
    assert set(counter.groups) - {None} <= pools
    # The FPN and the head ride on the learned sizes: nearly all of the
    # cost moves with some pool (only the stem conv, before every pool,
    # does not).
    fixed = counter.groups.get(None, 0.0)
    stem = 16 * 3 * 7 * 7 * 128 * 128 / 1e9
    assert fixed == pytest.approx(stem, rel=1e-6)
    assert counter.initial_gmacs > 0.15
    assert isinstance(dyno.backbone.dynopools[0], DynOPool2d)


def test_hrnet_hrfpn_faster_rcnn():
    """mmdet's Faster R-CNN HRNetV2p-W32 + HRFPN with DynOPoolHRNet: the
    human checkpoint loads with only the five alphas missing, the feature
    sizes are the human ones at initialisation, and the RPN priors tile the
    image once the stream scales moved; a training step reaches every
    alpha."""
    coco = osp.join(ROOT, 'configs', 'coco')
    human = build(osp.join(coco, 'faster-rcnn_hrnetv2p-w32_human_1x_coco.py'))
    dyno = build(
        osp.join(coco, 'faster-rcnn_hrnetv2p-w32_dynopool_1x_coco.py'))
    from mmdet.models.backbones import HRNet
    assert type(human.backbone) is HRNet
    assert type(dyno.backbone).__name__ == 'DetDynOPoolHRNet'
    assert dyno.backbone.norm_eval is human.backbone.norm_eval is True
    missing, unexpected = dyno.load_state_dict(
        human.state_dict(), strict=False)
    assert unexpected == []
    assert sorted(missing) == [
        f'backbone.dynopools.{i}.alpha' for i in range(5)
    ]
    H, W = 96, 160
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        assert [f.shape for f in human.extract_feat(x)
                ] == [f.shape for f in dyno.extract_feat(x)]
        for p, a in zip(
                dyno.backbone.dynopools,
            ([2.0, 2.0], [2.6, 1.7], [1.6, 2.4], [2.2, 1.9], [2.0, 2.5])):
            p.alpha.copy_(torch.tensor(a))
        feats = dyno.extract_feat(x)
    sizes = [f.shape[-2:] for f in feats]
    assert len({(h / w) for h, w in sizes}) > 1  # not the human pyramid
    priors = dyno.rpn_head.prior_generator.grid_priors(sizes, device='cpu')
    for p, (fh, fw) in zip(priors, sizes):
        cx, cy = (p[:, 0] + p[:, 2]) / 2, (p[:, 1] + p[:, 3]) / 2
        assert abs(cx.min()) <= 1e-4 and abs(cy.min()) <= 1e-4
        assert 0 < W - cx.max() <= W / fw + 1e-3
        assert 0 < H - cy.max() <= H / fh + 1e-3

    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(H, W),
            ori_shape=(H, W),
            scale_factor=(1.0, 1.0),
            batch_input_shape=(H, W),
            pad_shape=(H, W)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 12., 40., 70.], [60., 20., 150., 50.]]),
        labels=torch.tensor([3, 7]))
    dyno.train()
    losses = dyno.loss(x, [sample])
    total = sum(
        v if torch.is_tensor(v) else sum(v) for k, v in losses.items()
        if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    assert all(p.alpha.grad is not None for p in dyno.backbone.dynopools)


def test_dynamic_size_hrfpn_equals_hrfpn_on_halving_streams():
    from mmdet.models.necks import HRFPN

    from mmdynopool.models import DynamicSizeHRFPN
    torch.manual_seed(0)
    ours = DynamicSizeHRFPN([8, 16, 32], 8, num_outs=3)
    theirs = HRFPN([8, 16, 32], 8, num_outs=3)
    theirs.load_state_dict(ours.state_dict())  # same keys
    feats = [
        torch.rand(2, c, 24 // 2**i, 40 // 2**i)
        for i, c in enumerate((8, 16, 32))
    ]
    for a, b in zip(ours(feats), theirs(feats)):
        assert torch.equal(a, b)
    # Streams that do not halve: stream 0's size, pooled by 2 ** i.
    feats = [
        torch.rand(1, 8, 21, 30),
        torch.rand(1, 16, 13, 9),
        torch.rand(1, 32, 4, 7)
    ]
    with pytest.raises(RuntimeError):
        theirs(feats)
    assert [tuple(o.shape[-2:]) for o in ours(feats)] == [(21, 30), (10, 15),
                                                          (5, 7)]
    with pytest.raises(ValueError, match='inputs must hold 3 maps'):
        ours(feats[:2])
