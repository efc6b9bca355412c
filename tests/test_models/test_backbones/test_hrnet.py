import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmseg.models.backbones import HRNet

from mmdynopool.analysis import resizing_report
from mmdynopool.models.backbones import DynOPoolHRNet
from mmdynopool.models.backbones.hrnet import hrnet_extra
from mmdynopool.models.layers import DynOPool2d

TINY = hrnet_extra(4, blocks=1, modules=(1, 1, 2, 2))


def out_sizes(model, size):
    model.eval()
    with torch.no_grad():
        return [tuple(o.shape[-2:]) for o in model(torch.rand(1, 3, *size))]


class TestDynOPoolHRNet:

    @pytest.mark.parametrize('width,size,expected', [
        (48, (512, 512), [(128, 128), (64, 64), (32, 32), (16, 16)]),
        (18, (64, 96), [(16, 24), (8, 12), (4, 6), (2, 3)]),
        (32, (100, 60), [(25, 15), (13, 8), (7, 4), (4, 2)]),
    ])
    def test_same_shapes_as_human_at_init(self, width, size, expected):
        # Full W18 / W32 / W48 widths; blocks trimmed to keep CPU time low.
        extra = hrnet_extra(width, blocks=1, modules=(1, 1, 1, 1))
        human, dyno = HRNet(copy.deepcopy(extra)), DynOPoolHRNet(extra)
        assert out_sizes(human, size) == expected
        assert out_sizes(dyno, size) == expected

    def test_param_count_and_human_checkpoint(self):
        extra = hrnet_extra(18)
        human, dyno = HRNet(copy.deepcopy(extra)), DynOPoolHRNet(extra)
        n_h = sum(p.numel() for p in human.parameters())
        n_d = sum(p.numel() for p in dyno.parameters())
        assert n_d - n_h == 2 * 5  # stem + 4 streams, (alpha_h, alpha_w)
        result = dyno.load_state_dict(human.state_dict(), strict=False)
        assert sorted(
            result.missing_keys) == [f'dynopools.{i}.alpha' for i in range(5)]
        assert result.unexpected_keys == []
        loaded = dyno.state_dict()
        for k, v in human.state_dict().items():
            assert torch.equal(loaded[k], v)

    def test_one_pool_per_stream_is_shared_by_all_paths(self):
        model = DynOPoolHRNet(TINY, init_scales=[0.5, 0.5, 0.6, 0.7, 0.8])
        report = resizing_report(model, (64, 64))
        names = {r['name'] for r in report['layers']}
        assert names == {f'dynopools.{i}' for i in range(5)}
        # Every call of stream i's pool starts from stream i-1's size.
        ins = {}
        for r in report['layers']:
            ins.setdefault(r['name'], set()).add(r['in'])
        assert all(len(v) == 1 for v in ins.values())
        assert report['outputs'] == [(16, 16), (10, 10), (7, 7), (6, 6)]
        assert len(model.dynopools) == 5
        assert all(isinstance(p, DynOPool2d) for p in model.dynopools)

    @settings(max_examples=12, deadline=None)
    @given(
        scales=st.lists(
            st.tuples(st.floats(0.15, 2.0), st.floats(0.15, 2.0)),
            min_size=5,
            max_size=5),
        h=st.integers(8, 48),
        w=st.integers(8, 48))
    def test_random_alphas_forward_backward(self, scales, h, w):
        model = DynOPoolHRNet(TINY, init_scales=scales)
        model.train()
        outs = model(torch.randn(2, 3, h, w))
        # Stream sizes follow the pools' chain, whatever path produced them:
        # round half up of size / alpha, at least 2 (Eq. 3, Sec. 5.1).
        alphas = [p.alpha.tolist() for p in model.dynopools]

        def hand(size, alpha):
            return tuple(
                math.floor(max(d / a, 1.5) + 0.5) for d, a in zip(size, alpha))

        size = hand((h, w), alphas[0])
        for i, out in enumerate(outs):
            size = hand(size, alphas[i + 1])
            assert tuple(out.shape[-2:]) == size
        sum(o.square().mean() for o in outs).backward()
        for pool in model.dynopools:
            assert torch.isfinite(pool.alpha.grad).all()
            assert (pool.alpha.grad != 0).all()

    def test_registry_and_init_scale_pairs(self):
        from mmseg.registry import MODELS
        model = MODELS.build(
            dict(
                type='DynOPoolHRNet',
                extra=TINY,
                init_scales=[(0.5, 0.25)] * 5,
                dynopool_cfg=dict(mode='avg')))
        assert out_sizes(model, (64, 256)) == [(16, 16), (8, 4), (4, 2),
                                               (2, 2)]
        assert all(p.mode == 'avg' for p in model.dynopools)

    @pytest.mark.parametrize('extra,match', [
        ({
            k: v
            for k, v in TINY.items() if k != 'stage3'
        }, 'stage3'),
        (dict(TINY, stage2=dict(
            TINY['stage2'], num_blocks=(1, ))), 'num_blocks has 1 entries'),
        (dict(TINY, stage2=dict(TINY['stage2'],
                                block='FANCY')), 'block must be one of'),
        (dict(TINY, stage4=dict(TINY['stage2'])), 'fewer than'),
    ])
    def test_bad_extra(self, extra, match):
        with pytest.raises(ValueError, match=match):
            DynOPoolHRNet(extra)

    def test_bad_init_scales(self):
        with pytest.raises(ValueError, match='init_scales'):
            DynOPoolHRNet(TINY, init_scales=[0.5, 0.5])
        with pytest.raises(ValueError, match='init_scale'):
            DynOPoolHRNet(TINY, init_scales=0.0)


def test_position_grad_reaches_every_stream_pool():
    model = DynOPoolHRNet(TINY, dynopool_cfg=dict(position_grad='one_sided'))
    pools = [m for m in model.modules() if isinstance(m, DynOPool2d)]
    assert len(pools) == 5  # the stem pool and one per stream
    assert all(p.position_grad == 'one_sided' for p in pools)
    assert all(p.position_grad == 'central'
               for p in DynOPoolHRNet(TINY).modules()
               if isinstance(p, DynOPool2d))
