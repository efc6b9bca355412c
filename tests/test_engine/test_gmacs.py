"""mmdynopool.engine.gmacs (the GMACs loss's counting) and the config
look-up of its hook, against hand counts."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmdynopool.engine import (GMACsCounter, count_macs, gmacs_loss_hooks,
                               module_flops)
from mmdynopool.models import DynOPoolVGG

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo',
                'fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py')


def hand_macs(model, x, forward=None):
    """MACs per conv / linear from the output shapes, by the textbook
    formula (independent of FlopCounterMode)."""
    macs, hooks = {}, []

    def hook(name):

        def fn(m, args, out):
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1]
                macs[name] = macs.get(
                    name, 0) + out.numel() * (m.in_channels // m.groups) * k
            else:
                macs[name] = macs.get(name, 0) + out.numel() * m.in_features

        return fn

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook(name)))
    with torch.no_grad():
        (forward or model)(x)
    for h in hooks:
        h.remove()
    return macs


def build_segmentor():
    from mmseg.registry import MODELS
    cfg = Config.fromfile(DEMO)
    return MODELS.build(cfg.model)


def test_count_macs_matches_formula():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, groups=4),
        nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
    x = torch.zeros(1, 3, 16, 16)
    assert count_macs(model, x) == pytest.approx(hand_macs(model, x))


def test_module_flops_keys_are_module_names():
    # By hand: conv 16*16*8 outputs x 3*9 MACs, linear 2048 x 10; FLOPs
    # are twice the MACs, a parent's count holds its children's.
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Sequential(nn.Flatten(), nn.Linear(8 * 16 * 16, 10)))
    flops = module_flops(model, torch.zeros(1, 3, 16, 16))
    conv, linear = 2 * 16 * 16 * 8 * 27, 2 * 2048 * 10
    assert sum(flops['0'].values()) == conv
    assert sum(flops['1.1'].values()) == linear
    assert sum(flops['1'].values()) == linear
    assert sum(flops[''].values()) == conv + linear
    assert set(flops) == {'', '0', '1', '1.1'}  # no-FLOP modules left out


def test_gmacs_loss_hooks_finds_and_removes_only_that_hook():
    cfg = Config(
        dict(custom_hooks=[
            dict(type='ShapeLoggingHook', interval=2),
            dict(type='GMACsLossHook', loss_weight=0.1, input_size=(8, 8)),
            dict(type='ShapeAdaptorHook')
        ]))
    found = gmacs_loss_hooks(cfg)
    assert [h['loss_weight'] for h in found] == [0.1]
    found[0]['loss_weight'] = 0.2  # the config's own dict
    assert cfg.custom_hooks[1]['loss_weight'] == 0.2
    assert gmacs_loss_hooks(cfg, remove=True)[0]['loss_weight'] == 0.2
    assert [h['type'] for h in cfg.custom_hooks
            ] == ['ShapeLoggingHook', 'ShapeAdaptorHook']
    assert gmacs_loss_hooks(cfg) == []
    assert gmacs_loss_hooks(Config(dict())) == []


class TestGMACsCounter:

    def test_value_at_init_and_after_any_change_is_the_real_count(self):
        model = build_segmentor().eval()
        fwd = lambda t: model(t, mode='tensor')  # noqa: E731
        size = (96, 96)
        counter = GMACsCounter(model, size, forward=fwd)
        x = torch.zeros(1, 3, *size)
        expected0 = sum(hand_macs(model, x, fwd).values()) / 1e9
        assert counter.initial_gmacs == pytest.approx(expected0, rel=1e-9)
        with counter.recording():
            counter.reset()
            fwd(x)
        assert float(counter.loss()) == pytest.approx(expected0, rel=1e-6)

        # Move every alpha: L_GMACs is then the new network's real count.
        with torch.no_grad():
            for p, s in zip(model.backbone.dynopools, [(0.6, 0.45), (0.7, 0.5),
                                                       (0.4, 0.8), (0.55, 0.5),
                                                       (0.9, 0.3)]):
                p.alpha.copy_(1 / torch.tensor(s))
        with counter.recording():
            counter.reset()
            fwd(x)
        loss = counter.loss()
        expected = sum(hand_macs(model, x, fwd).values()) / 1e9
        assert float(loss) == pytest.approx(expected, rel=1e-6)
        assert float(loss) != pytest.approx(expected0, rel=1e-3)
        loss.backward()
        for p in model.backbone.dynopools:
            assert torch.isfinite(p.alpha.grad).all()
            assert (p.alpha.grad != 0).all()

    def test_gradient_chains_through_upstream_pools(self):
        # A chain of pools: d L / d alpha_1 (h) = -1 / alpha_1 * (GMACs of
        # every layer after it), the ratio being 1 at init.
        model = DynOPoolVGG(11, out_indices=(4, ), with_last_pool=False)
        counter = GMACsCounter(model, (32, 32))
        with counter.recording():
            model(torch.zeros(1, 3, 32, 32))
        counter.loss().backward()
        macs = hand_macs(model, torch.zeros(1, 3, 32, 32))
        # Where each pool sits in `features` (itself, or held by the
        # PoolAfter that runs it).
        positions = [
            i for i, m in enumerate(model.features) if any(
                getattr(m, 'pool', m) is p for p in model.dynopools)
        ]
        assert len(positions) == 4
        downstream = [
            sum(v for k, v in macs.items() if int(k.split('.')[1]) > idx) / 1e9
            for idx in positions
        ]
        for pool, gm in zip(model.dynopools, downstream):
            expected = torch.full((2, ), -gm / 2.0)  # alpha = 2 at init
            torch.testing.assert_close(pool.alpha.grad, expected)

    def test_probe_leaves_model_unchanged(self):
        model = build_segmentor().train()
        before = copy.deepcopy(model.state_dict())
        GMACsCounter(
            model, (64, 64), forward=lambda t: model(t, mode='tensor'))
        assert model.training
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), k
