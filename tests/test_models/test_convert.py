import pytest
import timm
import torch
import torchvision
from torch import nn

from mmdynopool.analysis import resizing_report
from mmdynopool.models import DynOPool2d
from mmdynopool.models.convert import convert_to_dynopool

MODELS = {
    'torchvision_resnet50':
    lambda: torchvision.models.resnet50(),
    'torchvision_mobilenet_v2':
    lambda: torchvision.models.mobilenet_v2(),
    'timm_resnet18':
    lambda: timm.create_model('resnet18', pretrained=False),
    'timm_efficientnet_b0':
    lambda: timm.create_model('efficientnet_b0', pretrained=False),
}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name', list(MODELS))
def test_convert_keeps_shapes_keys_and_only_adds_alpha(name):
    human, model = MODELS[name](), MODELS[name]()
    model.load_state_dict(human.state_dict())
    rows = convert_to_dynopool(model)
    human_rows = resizing_report(human, (96, 96))['layers']
    assert sorted(r['name'] for r in rows) == sorted(r['name']
                                                     for r in human_rows)
    report = resizing_report(model, (96, 96))
    assert {r['type'] for r in report['layers']} == {'DynOPool2d'}
    x = torch.randn(2, 3, 96, 96)
    human.eval(), model.eval()
    assert model(x).shape == human(x).shape
    assert n_params(model) - n_params(human) == 2 * len(model.dynopools)
    result = model.load_state_dict(human.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert all(k.startswith('dynopools.') for k in result.missing_keys)


def test_torchvision_resnet_branches_share_alpha():
    model = torchvision.models.resnet50()
    rows = convert_to_dynopool(model)
    group = {r['name']: r['group'] for r in rows}
    # stem conv, stem max-pool, then one shared pool per strided block.
    assert len(model.dynopools) == 5
    for stage in ('layer2', 'layer3', 'layer4'):
        assert group[f'{stage}.0.conv2'] == group[f'{stage}.0.downsample.0']
    assert group['conv1'] != group['maxpool']
    block = model.layer2[0]
    assert block.conv2.pool is block.downsample[0].pool
    assert isinstance(model.maxpool.pool, DynOPool2d)
    # Random scales: the branches still agree, every alpha learns.
    with torch.no_grad():
        for pool in model.dynopools:
            pool.alpha.copy_(1 / torch.empty(2).uniform_(0.3, 1.5))
    model.train()
    model(torch.randn(2, 3, 80, 72)).sum().backward()
    assert all((p.alpha.grad != 0).all() for p in model.dynopools)


def test_avg_pool_mode_and_no_share():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.AvgPool2d(2))
    rows = convert_to_dynopool(model, share=False)
    assert [r['type'] for r in rows] == ['Conv2d', 'AvgPool2d']
    assert [p.mode for p in model.dynopools] == ['max', 'avg']


def test_mismatched_group_is_an_error():

    class TwoPaths(nn.Module):

        def __init__(self):
            super().__init__()
            self.a = nn.MaxPool2d(2)
            self.b = nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(1, 1))
            self.c = nn.AvgPool2d(4, stride=4)

        def forward(self, x):
            up = nn.functional.interpolate(x, scale_factor=2)
            return self.a(x) + self.c(up)

    with pytest.raises(ValueError, match='different input sizes or strides'):
        convert_to_dynopool(TwoPaths())


def test_position_grad_through_dynopool_cfg():
    model = torchvision.models.resnet18(num_classes=10)
    convert_to_dynopool(model, dynopool_cfg=dict(position_grad='one_sided'))
    pools = [m for m in model.modules() if isinstance(m, DynOPool2d)]
    assert pools and all(p.position_grad == 'one_sided' for p in pools)


def test_patchify_convs_are_refused_then_skipped():
    # timm ConvNeXt: 4x4/s4 stem (224 -> 56) and 2x2/s2 down-sampling convs
    # without padding. Rule B (DynOPool, then the conv at stride 1) gives
    # 56 - 3 = 53 and 28 - 1 = 27 (hand count): every one is refused.
    model = timm.create_model('convnext_atto', pretrained=False)
    x = torch.zeros(1, 3, 224, 224)
    keys = list(model.state_dict())
    with pytest.raises(
            ValueError,
            match=r'stem\.0: Conv2d kernel \(4, 4\), '
            r'stride \(4, 4\), padding \(0, 0\), \(224, 224\) -> '
            r'\(56, 56\); stages\.1\.downsample\.1: Conv2d kernel '
            r'\(2, 2\).*skip='):
        convert_to_dynopool(model, example_input=x)
    assert list(model.state_dict()) == keys  # nothing changed

    # A patchify stem before a "same"-padded strided conv: skip the stem.

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 4, stride=4)
            self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)

        def forward(self, x):
            return self.down(self.stem(x))

    net, x = Net(), torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r'stem: Conv2d kernel \(4, 4\)'):
        convert_to_dynopool(net, example_input=x)
    rows = convert_to_dynopool(net, example_input=x, skip=['stem'])
    assert [r['name'] for r in rows] == ['down']
    assert net(x).shape[-2:] == (8, 8)


@pytest.mark.parametrize('args,error,match', [
    ((None, ), TypeError, 'model must be an nn.Module, got NoneType'),
    ((nn.Conv2d(3, 3, 3, 2), True, None, None, 'conv'), TypeError, 'skip'),
    ((nn.Conv2d(3, 3, 3, 2), True, None, None, ['nope']), ValueError,
     r"skip names layers the model does not have: \['nope'\]"),
])
def test_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        convert_to_dynopool(*args)


def test_pools_on_odd_sizes_are_converted():
    # A 2x2 max-pool floors 7 to 3 where DynOPool rounds 3.5 half up to 4:
    # DynOPool's own rounding (documented), not a refusal.
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2))
    rows = convert_to_dynopool(model, example_input=torch.zeros(1, 3, 7, 7))
    assert [r['type'] for r in rows] == ['MaxPool2d']


def test_pools_that_change_sizes_are_refused_like_convs():
    # MaxPool2d(3, 2) without padding: 8x8 -> 3x3; DynOPool 0.5 gives 4x4.
    def net():
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(3, 2),
            nn.Conv2d(4, 4, 1))

    model, x = net(), torch.zeros(1, 3, 8, 8)
    keys = list(model.state_dict())
    with pytest.raises(
            ValueError,
            match=r'1: MaxPool2d kernel 3, stride 2, '
            r'padding 0, \(8, 8\) -> \(3, 3\).*skip='):
        convert_to_dynopool(model, example_input=x)
    assert list(model.state_dict()) == keys and model(x).shape[-1] == 3
    assert convert_to_dynopool(model, example_input=x, skip=['1']) == []
    # The same pool with padding 1, or with ceil_mode, keeps H / 2.
    for pool in (nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(3, 2, ceil_mode=True),
                 nn.AvgPool2d(2)):
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), pool)
        human = pool(torch.zeros(1, 4, 8, 8)).shape
        assert len(convert_to_dynopool(model, example_input=x)) == 1
        assert model(x).shape == human


def test_a_conv_under_two_names_is_converted_at_both():

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(3, 3, 3, stride=2, padding=1)
            self.alias = self.down  # the same module, registered twice

        def forward(self, x):
            return self.alias(self.down(x))

    model = Net()
    rows = convert_to_dynopool(model, example_input=torch.zeros(1, 3, 16, 16))
    assert model.down is model.alias and model.down.stride == (1, 1)
    assert sorted(r['name'] for r in rows) == ['alias', 'down']
    assert len(model.dynopools) == 1
    assert model(torch.zeros(1, 3, 16, 16)).shape[-2:] == (4, 4)


def test_strided_layers_it_cannot_convert_are_named():
    conv3d = nn.Sequential(nn.Conv3d(3, 4, 3, stride=2, padding=1))
    with pytest.raises(ValueError, match=r'0: Conv3d.*2-D.*nothing'):
        convert_to_dynopool(conv3d)
    assert conv3d[0].stride == (2, 2, 2)

    class Mixed(nn.Module):

        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(3, 3, 3, stride=2, padding=1)
            self.pool1d = nn.MaxPool1d(2)

        def forward(self, x):
            x = self.down(x)
            return self.pool1d(x.flatten(2))

    model = Mixed()
    with pytest.warns(UserWarning, match=r'pool1d: MaxPool1d.*left as'):
        rows = convert_to_dynopool(model)
    assert [r['name'] for r in rows] == ['down']


def test_a_sequential_still_runs_after_conversion():
    """``dynopools`` on an ``nn.Sequential`` must not be run as a layer
    (it used to end in torch's NotImplementedError)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, stride=2, padding=1))
    human = [m for m in model]
    x = torch.randn(2, 3, 16, 16)
    rows = convert_to_dynopool(model)
    assert len(rows) == 2 and len(model.dynopools) == 2
    out = model(x)
    assert out.shape == (2, 4, 4, 4)
    expected = human[0](x).relu()
    expected = model.dynopools[1](model.dynopools[0](expected))
    torch.testing.assert_close(
        out,
        nn.functional.conv2d(
            expected, human[3].weight, human[3].bias, padding=1))
    assert [k for k in model.state_dict()
            if 'alpha' in k] == ['dynopools.0.alpha', 'dynopools.1.alpha']
    out.sum().backward()
    assert all(p.alpha.grad is not None for p in model.dynopools)
