"""convert_to_dynamic / DynamicLayers against the library models they wrap
and hand-built references of the residual blocks."""
import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmpretrain.models.backbones import (DenseNet, MobileNetV2, ResNet,
                                         ResNet_CIFAR, ResNetV1d, ResNeXt)
from torch import nn

from mmdynopool.models.dynamic import (DynamicLayers, convert_to_dynamic,
                                       parse_permutation_key, permutation_key)
from mmdynopool.models.layers import DynamicConv2d, DynamicPool2d
from mmdynopool.models.layers.dynamic_conv import option_key


def names_of(model):
    dyn = DynamicLayers.from_model(model)
    lookup = {id(m): n for n, m in model.named_modules()}
    return {
        k: sorted(lookup[id(m)] for m in v)
        for k, v in dyn.modules.items()
    }


def last(out):
    return out[-1] if isinstance(out, (tuple, list)) else out


# (model factory, expected dynamic modules per layer A-D)
CASES = {
    'mmpretrain ResNet-50': (lambda: ResNet(50), [['layer1.0.conv2'],
                                                  ['layer2.0.conv2'],
                                                  ['layer3.0.conv2'],
                                                  ['layer4.0.conv2']]),
    'mmpretrain ResNeXt-50': (lambda: ResNeXt(50), [['layer1.0.conv2'],
                                                    ['layer2.0.conv2'],
                                                    ['layer3.0.conv2'],
                                                    ['layer4.0.conv2']]),
    'mmpretrain MobileNetV2': (lambda: MobileNetV2(),
                               [['layer2.0.conv.1.conv'],
                                ['layer3.0.conv.1.conv'],
                                ['layer4.0.conv.1.conv'],
                                ['layer6.0.conv.1.conv']]),
    'mmpretrain DenseNet-121':
    (lambda: DenseNet('121'),
     [['stem.3', 'stages.0.block.0.conv2'],
      ['transitions.0.pool', 'stages.1.block.0.conv2'],
      ['transitions.1.pool', 'stages.2.block.0.conv2'],
      ['transitions.2.pool', 'stages.3.block.0.conv2']]),
    'torchvision ResNet-50':
    (lambda: torchvision.models.resnet50(), [['layer1.0.conv2'],
                                             ['layer2.0.conv2'],
                                             ['layer3.0.conv2'],
                                             ['layer4.0.conv2']]),
    'torchvision DenseNet-121':
    (lambda: torchvision.models.densenet121(),
     [['features.pool0', 'features.denseblock1.denselayer1.conv2'],
      ['features.transition1.pool', 'features.denseblock2.denselayer1.conv2'],
      ['features.transition2.pool', 'features.denseblock3.denselayer1.conv2'],
      ['features.transition3.pool',
       'features.denseblock4.denselayer1.conv2']]),
}


@pytest.mark.parametrize('case', list(CASES))
def test_converts_the_papers_layers_keeping_outputs_and_keys(case):
    factory, expected = CASES[case]
    torch.manual_seed(0)
    model = factory()
    model.eval()  # mmpretrain backbones' eval() returns None
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = last(model(x))
    keys = list(model.state_dict())
    dyn = convert_to_dynamic(model)
    assert names_of(model) == {k: sorted(v) for k, v in zip('ABCD', expected)}
    assert list(model.state_dict()) == keys  # checkpoints load unchanged
    with torch.no_grad():
        torch.testing.assert_close(last(model(x)), ref, rtol=0, atol=0)
    assert dyn.names == list('ABCD')


def test_torchvision_mobilenet_and_timm_resnet():
    timm = pytest.importorskip('timm')
    mb = torchvision.models.mobilenet_v2()
    convert_to_dynamic(mb)
    assert [v[0] for v in names_of(mb).values()
            ] == [f'features.{i}.conv.1.0' for i in (2, 4, 7, 14)]
    r18 = timm.create_model('resnet18')
    convert_to_dynamic(r18)
    assert [v[0] for v in names_of(r18).values()
            ] == [f'layer{i}.0.conv1'
                  for i in (1, 2, 3, 4)]  # basic block: conv1


def test_permutation_counts_and_default():
    dyn = convert_to_dynamic(ResNet(50))
    # No up-sampling in A and B (paper Sec. 3.1): 4 * 4 * 5 * 5.
    assert dyn.choices('A', 'stride') == (1, 2, 3, 4)
    assert dyn.choices('C', 'stride') == (0.5, 1, 2, 3, 4)
    assert len(dyn.permutations('stride')) == 400
    assert len(dyn.permutations('dilation')) == 625
    assert len(dyn.permutations(('stride', 'kernel_size'))) == 400 * 625
    assert dyn.default('stride') == ((1, ), (2, ), (2, ), (2, ))
    assert dyn.default(
        ('stride', 'kernel_size')) == ((1, 3), (2, 3), (2, 3), (2, 3))
    assert dyn.default('stride') in dyn.permutations('stride')
    dense = convert_to_dynamic(DenseNet('121'))
    assert len(dense.permutations('stride')) == 4**4  # pools: 1..4


def test_output_sizes_follow_the_strides():
    model = ResNet(50)
    model.eval()
    dyn = convert_to_dynamic(model)
    # stem /4: 64 -> 16; A s2 -> 8; B s4 -> 2; C s1 -> 2; D s1/2 -> 4.
    dyn.apply(((2, ), (4, ), (1, ), (0.5, )))
    with torch.no_grad():
        assert last(model(torch.randn(1, 3, 64, 64))).shape[-2:] == (4, 4)
    dyn.reset()
    with torch.no_grad():
        assert last(model(torch.randn(1, 3, 64, 64))).shape[-2:] == (2, 2)


def bottleneck_reference(block, x, stride, dilation=1, shortcut='avgpool'):
    """mmpretrain Bottleneck by hand with its 3x3 at ``stride``; the
    shortcut 1x1 at stride 1 then adaptive average pooling to the main
    path's size (the first author's StriderBlock), or at the same stride
    (``'subsample'``); nearest 2x up-sampling for 1/2."""
    out = F.relu(block.bn1(block.conv1(x)))
    w2 = block.conv2.weight
    if stride == 0.5:
        z = out.new_zeros(*out.shape[:2], 2 * out.shape[2], 2 * out.shape[3])
        z[..., ::2, ::2] = out
        out = F.conv2d(
            z,
            w2,
            padding=dilation,
            dilation=dilation,
            groups=block.conv2.groups)
        short = F.interpolate(x, scale_factor=2, mode='nearest')
        stride_ds = 1
    else:
        out = F.conv2d(
            out,
            w2,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            groups=block.conv2.groups)
        short, stride_ds = x, stride
    out = F.relu(block.bn2(out))
    out = block.bn3(block.conv3(out))
    ds_conv, ds_bn = block.downsample[0], block.downsample[1]
    if shortcut == 'avgpool' and stride_ds > 1:
        short = F.adaptive_avg_pool2d(
            F.conv2d(short, ds_conv.weight), out.shape[-2:])
    else:
        short = F.conv2d(short, ds_conv.weight, stride=stride_ds)
    return F.relu(out + ds_bn(short))


@pytest.mark.parametrize('shortcut', ['avgpool', 'subsample'])
@pytest.mark.parametrize('stride,dilation', [(1, 1), (3, 2), (4, 1), (0.5, 1),
                                             (0.5, 3)])
def test_block_and_shortcut_equal_hand_reference(stride, dilation, shortcut):
    torch.manual_seed(0)
    model = ResNet(50).double()
    model.eval()
    block = model.layer3[0]
    x = torch.randn(2, 512, 9, 11, dtype=torch.float64)
    with torch.no_grad():
        ref = bottleneck_reference(block, x, stride, dilation, shortcut)
        dyn = convert_to_dynamic(model, shortcut=shortcut)
        dyn.apply(((1, 1), (2, 1), (stride, dilation), (2, 1)),
                  ('stride', 'dilation'))
        out = model.layer3[0](x)
    torch.testing.assert_close(out, ref)
    expected = (18, 22) if stride == 0.5 else (-(-9 // stride),
                                               -(-11 // stride))
    assert out.shape[-2:] == expected


@pytest.mark.parametrize('shortcut', ['avgpool', 'subsample'])
def test_identity_shortcut_follows_basic_block(shortcut):
    torch.manual_seed(0)
    model = ResNet_CIFAR(18, stem_channels=8, base_channels=8)
    model.eval()
    block = model.layer1[0]
    assert block.downsample is None
    x = torch.randn(1, 8, 10, 10)
    dyn = convert_to_dynamic(model, shortcut=shortcut)
    dyn.apply(((3, ), (2, ), (2, ), (2, )))
    with torch.no_grad():
        out = block(x)
        main = block.norm2(
            block.conv2(
                F.relu(
                    block.norm1(
                        F.conv2d(x, block.conv1.weight, stride=3,
                                 padding=1)))))
    # 10 -> 4 per axis: adaptive average pooling's windows [0, 3), [2, 5),
    # [5, 8), [7, 10) (floor / ceil of i * 10 / 4), or one pixel in 3.
    if shortcut == 'avgpool':
        cells = [(int(i * 10 / 4), -(-(i + 1) * 10 // 4)) for i in range(4)]
        short = torch.stack([
            torch.stack([x[0, :, a:b, c:d].mean((1, 2)) for c, d in cells], -1)
            for a, b in cells
        ], -2)[None]
    else:
        short = x[..., ::3, ::3]
    torch.testing.assert_close(out, F.relu(main + short))
    with pytest.raises(ValueError, match="shortcut.*'mean'"):
        convert_to_dynamic(ResNet_CIFAR(18), shortcut='mean')


def test_pool_stride_equals_hand_average():
    pool = DynamicPool2d(nn.AvgPool2d(2, 2))
    x = torch.arange(49.).reshape(1, 1, 7, 7)
    pool.set_option(stride=3)
    out = pool(x)
    # Windows start at 0, 3, 6; the last one holds only column / row 6.
    expected = torch.tensor(
        [[x[0, 0, r:r + 2, c:c + 2].mean() for c in (0, 3, 6)]
         for r in (0, 3, 6)])
    torch.testing.assert_close(out[0, 0], expected)
    pool.reset_option()
    torch.testing.assert_close(pool(x), F.avg_pool2d(x, 2, 2))
    with pytest.raises(ValueError, match='stride=0.5'):
        pool.set_option(stride=0.5)


def test_keys_round_trip_and_converted_modules():
    model = ResNet(50)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    convert_to_dynamic(model, layers='BD')
    assert isinstance(model.layer2[0].conv2, DynamicConv2d)
    assert not isinstance(model.layer1[0].conv2, DynamicConv2d)
    model.load_state_dict(sd, strict=True)
    assert DynamicLayers.from_model(model).names == ['B', 'D']


def test_permutation_key_round_trip():
    p = ((1, 3), (0.5, 1), (4, 9))
    assert permutation_key(p) == '1/3 0.5/1 4/9'
    assert parse_permutation_key(permutation_key(p)) == p


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match='arch must be one of'):
        convert_to_dynamic(ResNet(50), arch='vgg')
    with pytest.raises(ValueError, match='layers must be letters'):
        convert_to_dynamic(ResNet(50), layers='AE')
    with pytest.raises(ValueError, match='options keys'):
        convert_to_dynamic(ResNet(50), options={'padding': (1, )})
    with pytest.raises(ValueError, match='avg_down'):
        convert_to_dynamic(ResNetV1d(depth=50))
    dyn = convert_to_dynamic(ResNet(50))
    with pytest.raises(ValueError, match='must hold 4 tuples'):
        dyn.apply(((1, ), (2, )))
    with pytest.raises(ValueError, match='stride=5'):
        dyn.apply(((5, ), (2, ), (2, ), (2, )))
    with pytest.raises(ValueError, match='attributes must be'):
        dyn.permutations(('padding', ))
    with pytest.raises(ValueError, match='no dynamic layers'):
        DynamicLayers.from_model(nn.Conv2d(1, 1, 3))


@pytest.mark.parametrize('shortcut', ['avgpool', 'subsample'])
@pytest.mark.parametrize('stride', [(1, 2), (4, 1), (0.5, 1)])
def test_anisotropic_block_equals_hand_reference(stride, shortcut):
    """An anisotropic stride in layer C: the main path per axis, the
    shortcut pooled (or subsampled / up-sampled) to the main path's size."""
    torch.manual_seed(0)
    model = ResNet(50).double()
    model.eval()
    block = model.layer3[0]
    x = torch.randn(1, 512, 9, 11, dtype=torch.float64)
    with torch.no_grad():
        out = F.relu(block.bn1(block.conv1(x)))
        w2 = block.conv2.weight
        if 0.5 in stride:  # zeros interleaved along the halved axis
            z = out.new_zeros(1, out.shape[1], 2 * out.shape[2], out.shape[3])
            z[..., ::2, :] = out
            out = F.conv2d(z, w2, padding=1)
            short = F.conv2d(
                F.interpolate(x, scale_factor=(2., 1.), mode='nearest'),
                block.downsample[0].weight)
        else:
            out = F.conv2d(out, w2, stride=stride, padding=1)
            conv1x1 = block.downsample[0].weight
            short = (
                F.adaptive_avg_pool2d(F.conv2d(x, conv1x1), out.shape[-2:]) if
                shortcut == 'avgpool' else F.conv2d(x, conv1x1, stride=stride))
        out = block.bn3(block.conv3(F.relu(block.bn2(out))))
        ref = F.relu(out + block.downsample[1](short))
        dyn = convert_to_dynamic(
            model, shortcut=shortcut, options=dict(stride=(1, 2, stride)))
        dyn.apply(((1, ), (2, ), (stride, ), (2, )))
        torch.testing.assert_close(model.layer3[0](x), ref)
    # Keys and choices: pairs sort between the numbers and round-trip.
    choices = dyn.choices('C', 'stride')
    assert choices == tuple(sorted(choices, key=option_key))
    key = permutation_key(((1, ), (2, ), (stride, ), (2, )))
    assert parse_permutation_key(key) == ((1, ), (2, ), (stride, ), (2, ))
    assert 'x' in key.split()[2]


def test_slots_are_constructor_arguments():
    from mmdynopool.models import DynamicConv2d, DynamicPool2d
    conv = DynamicConv2d(2, 2, 3, slot='B', slot_attributes=('stride', ))
    assert (conv.slot, conv.slot_attributes) == ('B', ('stride', ))
    assert DynamicConv2d(2, 2, 3).slot is None  # not an ABCD layer
    pool = DynamicPool2d(torch.nn.MaxPool2d(2), slot='A')
    assert (pool.slot, pool.slot_attributes) == ('A', ('stride', ))
    with pytest.raises(ValueError, match='slot_attributes must be'):
        DynamicConv2d(2, 2, 3, slot_attributes=('padding', ))


@pytest.mark.parametrize('follow', [False, True])
def test_shortcut_at_the_trained_stride(follow):
    """At its trained stride 2 a block keeps the pretrained strided 1x1 by
    default (the trained network, unchanged); ``follow_at_trained_stride``
    runs the first author's shortcut there too (the 1x1 at stride 1, then
    adaptive average pooling)."""
    torch.manual_seed(0)
    model = ResNet(50).double()
    model.eval()
    block = model.layer3[0]
    x = torch.randn(2, 512, 9, 11, dtype=torch.float64)
    with torch.no_grad():
        trained = block(x)
        ref = bottleneck_reference(block, x, 2, 1, 'avgpool')
        convert_to_dynamic(model, follow_at_trained_stride=follow)
        out = model.layer3[0](x)
    assert not torch.allclose(ref, trained)
    torch.testing.assert_close(out, ref if follow else trained)


def test_converting_twice_is_a_clear_error():
    model = ResNet(50)
    convert_to_dynamic(model, layers='BD')
    with pytest.raises(
            ValueError,
            match=r'already has dynamic layers '
            r'\(B, D\).*DynamicLayers\.from_model'):
        convert_to_dynamic(model)
    with pytest.raises(TypeError, match='follow_at_trained_stride'):
        convert_to_dynamic(ResNet(18), follow_at_trained_stride='yes')


def test_an_option_exports_and_compiles_as_plain_aten():
    """What DynOPool's op gets, where it applies to the dynamic layers: an
    option is Python state and the layers plain ATen ops, so a converted
    network exports and compiles into one graph, equal to eager. (At the
    trained option the input size may be dynamic; at other strides
    torch.export cannot prove that the residual paths' ceil divisions agree
    for every size, so those export at a fixed size.)"""
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    layers = convert_to_dynamic(net)
    net.eval()
    h = torch.export.Dim('h', min=64, max=512)
    w = torch.export.Dim('w', min=64, max=512)
    x = torch.rand(2, 3, 64, 80)
    dynamic = torch.export.export(
        net, (x, ), dynamic_shapes={'x': {
            2: h,
            3: w
        }})
    y = torch.rand(2, 3, 96, 112)
    with torch.no_grad():
        torch.testing.assert_close(dynamic.module()(y), net(y))
    perms = layers.permutations()
    layers.apply(perms[len(perms) // 3])
    assert layers.default() != perms[len(perms) // 3]
    static = torch.export.export(net, (y, ))
    torch._dynamo.reset()
    compiled = torch.compile(net, fullgraph=True, backend='aot_eager')
    with torch.no_grad():
        ref = net(y)
        torch.testing.assert_close(static.module()(y), ref)
        torch.testing.assert_close(compiled(y), ref)
