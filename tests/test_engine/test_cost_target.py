"""mmdynopool.engine.cost_target: the adaptive lambda against hand
computations, the settle against exact MAC counts, plain-PyTorch use."""
import math

import pytest
import torch
from torch import nn

from mmdynopool.engine import GMACsCounter, count_macs
from mmdynopool.engine.cost_target import (GMACsTarget, _proportional,
                                           exact_gmacs, settle_to_gmacs)
from mmdynopool.models import DynOPool2d, convert_to_dynopool


def small_net(scale=0.5):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), DynOPool2d(scale),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), DynOPool2d(scale),
        nn.Conv2d(16, 16, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10))


def hand_gmacs(h1, w1, h2, w2, size=32):
    """MACs by the textbook formula: Cout Cin k k Hout Wout per conv."""
    return (8 * 3 * 9 * size * size + 16 * 8 * 9 * h1 * w1 +
            16 * 16 * 9 * h2 * w2 + 16 * 10) / 1e9


def test_exact_gmacs_is_the_hand_count():
    net = small_net()
    assert exact_gmacs(net,
                       (32, 32)) == pytest.approx(hand_gmacs(16, 16, 8, 8))
    with torch.no_grad():
        net[2].alpha.copy_(torch.tensor([32 / 11, 32 / 20]))
    assert exact_gmacs(net,
                       (32, 32)) == pytest.approx(hand_gmacs(11, 20, 6, 10))


def test_proportional_factor():
    r = torch.tensor([0.5, 0.9, 1.0, 1.2, 2.0], dtype=torch.float64)
    got = _proportional(r, 4.0)
    expected = [
        1 + 4 * math.log(0.5), 1 + 4 * math.log(0.9), 1.0, 1.2**4, 16.0
    ]
    torch.testing.assert_close(got,
                               torch.tensor(expected, dtype=torch.float64))
    assert got[0] < 0  # far under the target the penalty rewards cost


class TestSettle:

    def test_within_the_band_nothing_moves(self):
        net = small_net()
        before = [p.alpha.detach().clone() for p in (net[2], net[5])]
        target = hand_gmacs(16, 16, 8, 8) * 1.01
        out = settle_to_gmacs(net, target, (32, 32))
        assert out['shift'] == 0 and out['moves'] == 0
        for p, a in zip((net[2], net[5]), before):
            assert torch.equal(p.alpha.detach(), a)

    @pytest.mark.parametrize('factor', [0.55, 0.8, 1.3, 2.0])
    def test_reaches_the_band_keeping_the_aspect_ratio(self, factor):
        net = small_net()
        with torch.no_grad():
            net[2].alpha.copy_(torch.tensor([32 / 13, 32 / 19]))
        ratio = float(net[2].alpha[0].detach() / net[2].alpha[1].detach())
        target = exact_gmacs(net, (32, 32)) * factor
        out = settle_to_gmacs(net, target, (32, 32), tolerance=0.03)
        assert abs(out['gap']) <= 0.03
        assert exact_gmacs(net, (32, 32)) == pytest.approx(out['gmacs'])
        assert out['gap'] == pytest.approx(out['gmacs'] / target - 1)
        if out['moves'] == 0:  # one common factor: ratios kept
            alpha = net[2].alpha.detach()
            assert float(alpha[0] / alpha[1]) == pytest.approx(ratio)
        # Too expensive -> larger alphas, too cheap -> smaller.
        assert (out['shift'] > 0) == (factor < 1) or out['shift'] == 0

    def test_unreachable_band_warns_and_keeps_the_closest(self):
        net = small_net()
        floor = hand_gmacs(2, 2, 2, 2)  # every map at the 2-pixel floor
        with pytest.warns(UserWarning, match='jump over'):
            out = settle_to_gmacs(net, floor / 3, (32, 32))
        assert out['gmacs'] == pytest.approx(floor)

    def test_bad_arguments(self):
        net = small_net()
        for bad in (0, -1.0, float('nan'), True):
            with pytest.raises(ValueError, match='target_gmacs'):
                settle_to_gmacs(net, bad, (32, 32))
        with pytest.raises(ValueError, match='tolerance'):
            settle_to_gmacs(net, 0.01, (32, 32), tolerance=0)
        frozen = small_net()
        for m in frozen.modules():
            if isinstance(m, DynOPool2d):
                m.fixed = True
        with pytest.raises(ValueError, match='no learnable DynOPool2d'):
            settle_to_gmacs(frozen, 0.01, (32, 32))


class TestController:

    def make(self, **kwargs):
        net = small_net()
        counter = GMACsCounter(net, (32, 32))
        kwargs.setdefault('max_iters', 10)
        return net, counter, GMACsTarget(counter, loss_weight=0.5, **kwargs)

    def test_lambda_follows_the_gap_by_hand(self):
        net, counter, target = self.make(
            target_gmacs=hand_gmacs(8, 8, 4, 4),
            gain=0.1,
            p_gain=2.0,
            settle=1.0)
        counter.attach()
        x = torch.randn(2, 3, 32, 32)
        ratio = hand_gmacs(16, 16, 8, 8) / hand_gmacs(8, 8, 4, 4)
        m = 1.0
        for it in range(1, 4):
            counter.reset()
            net(x)
            loss = target.loss()
            # lambda_t = loss_weight * m_t * ratio^p, times the per-image
            # cost (the alphas do not move here: no optimizer).
            assert float(loss.detach()) == pytest.approx(
                0.5 * m * ratio**2 * hand_gmacs(16, 16, 8, 8), rel=1e-5)
            target.step(it)
            m *= ratio**0.1
            assert float(target.m) == pytest.approx(m, rel=1e-6)
            assert float(target.gap()) == pytest.approx(ratio - 1, rel=1e-5)
        assert target.settled is None  # settle=1: never

    def test_settles_once_then_penalises_nothing(self):
        net, counter, target = self.make(
            target_gmacs=hand_gmacs(12, 12, 6, 6), settle=0.5)
        counter.attach()
        x = torch.randn(2, 3, 32, 32)
        assert target.settle_iter == 5
        for it in range(1, 11):
            counter.reset()
            net(x)
            target.loss()
            result = target.step(it)
            assert (result is not None) == (it == 5)
        assert abs(target.settled['gap']) <= 0.02
        assert all(p.fixed for p in counter.pools)
        counter.reset()
        net(x)
        assert float(target.loss()) == 0
        state = target.state_dict()
        _, counter2, other = self.make(target_gmacs=1.0)
        other.load_state_dict(state)
        assert other.settled == target.settled
        assert all(p.fixed for p in counter2.pools)
        assert float(other.m) == float(target.m)

    def test_no_host_reads_per_step(self, count_host_reads):
        net, counter, target = self.make(target_gmacs=0.001, settle=1.0)
        counter.attach()
        x = torch.randn(2, 3, 32, 32)
        counter.reset()
        net(x)
        with count_host_reads() as reads:
            loss = target.loss()
            target.step(1)
            loss.backward()
        assert reads == []

    def test_bad_arguments(self):
        net = small_net()
        counter = GMACsCounter(net, (32, 32))
        for kwargs, name in ((dict(target_gmacs=-1), 'target_gmacs'),
                             (dict(loss_weight=0),
                              'loss_weight'), (dict(max_iters=0), 'max_iters'),
                             (dict(settle=0), 'settle'), (dict(settle=1.5),
                                                          'settle'),
                             (dict(gain=0), 'gain'), (dict(p_gain=-1),
                                                      'p_gain')):
            args = dict(target_gmacs=0.01, loss_weight=0.1, max_iters=10)
            args.update(kwargs)
            with pytest.raises(ValueError, match=name):
                GMACsTarget(counter, **args)


def test_plain_pytorch_training_ends_at_the_target():
    """The docstring's recipe on a torchvision-style model converted with
    convert_to_dynopool: a short training ends within 5 % of the target."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 4))
    convert_to_dynopool(net)
    human = hand_gmacs(16, 16, 8, 8)
    target_gmacs = 0.7 * human
    counter = GMACsCounter(net, (32, 32))
    target = GMACsTarget(
        counter, target_gmacs=target_gmacs, loss_weight=1e-2, max_iters=40)
    alphas = [p.alpha for p in counter.pools]
    others = [p for p in net.parameters() if all(p is not a for a in alphas)]
    opt = torch.optim.SGD([dict(params=others),
                           dict(params=alphas, lr=0.05)],
                          lr=0.05,
                          momentum=0.9)
    counter.attach()
    g = torch.Generator().manual_seed(0)
    for it in range(40):
        x = torch.randn(8, 3, 32, 32, generator=g)
        y = (x.mean((1, 2, 3)) > 0).long() + 2 * (x[:, 0].mean((1, 2)) > 0)
        counter.reset()
        loss = nn.functional.cross_entropy(net(x), y) + target.loss() * 8
        opt.zero_grad()
        loss.backward()
        opt.step()
        target.step(it + 1)
    assert target.settled is not None
    final = sum(count_macs(net, torch.zeros(1, 3, 32, 32)).values()) / 1e9
    assert abs(final / target_gmacs - 1) <= 0.05
    assert final == pytest.approx(target.settled['gmacs'])
