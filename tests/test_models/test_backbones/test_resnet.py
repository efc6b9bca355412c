import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmpretrain.models.backbones import ResNet, ResNet_CIFAR
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck

from mmdynopool.analysis import resizing_report
from mmdynopool.models.backbones import (DynOPoolResNet, DynOPoolResNet_CIFAR,
                                         ShapeAdaptorResNet,
                                         ShapeAdaptorResNet_CIFAR)
from .test_base import ALL4, out_sizes


class TestDynOPoolResNet:

    def test_paper_rules(self):
        model = DynOPoolResNet(depth=50, **ALL4)
        rows = resizing_report(model, (224, 224))['layers']
        # Only DynOPool resizes: no strided conv or pooling is left.
        assert {r['type'] for r in rows} == {'DynOPool2d'}
        assert [(r['name'], r['in'], r['out']) for r in rows] == [
            ('dynopools.0', (224, 224), (56, 56)),
            ('dynopools.1', (56, 56), (28, 28)),
            ('dynopools.2', (28, 28), (14, 14)),
            ('dynopools.3', (14, 14), (7, 7)),
        ]
        block = model.layer2[0]
        # Main branch and shortcut share one module (one alpha).
        assert block.conv3.pool is model.dynopools[1]
        assert block.downsample[0].pool is model.dynopools[1]
        assert block.conv2.stride == (1, 1)
        assert model.maxpool.pool is model.dynopools[0]

    def test_init_scales(self):
        model = DynOPoolResNet_CIFAR(
            depth=18, init_scales=[0.6, 0.5, 0.5], **ALL4)
        assert out_sizes(model, 32) == [(32, 32), (19, 19), (10, 10), (5, 5)]

    @settings(max_examples=10, deadline=None)
    @given(
        scales=st.lists(st.floats(0.2, 1.8), min_size=4, max_size=4),
        size=st.integers(9, 64))
    def test_random_alphas_forward_backward(self, scales, size):
        model = DynOPoolResNet(
            depth=18,
            base_channels=8,
            stem_channels=8,
            init_scales=scales,
            **ALL4)
        outs = model(torch.randn(2, 3, size, size))
        sum(o.square().mean() for o in outs).backward()
        for pool in model.dynopools:
            assert torch.isfinite(pool.alpha.grad).all()
            assert (pool.alpha.grad != 0).all()

    def test_bad_config(self):
        with pytest.raises(KeyError, match='depth must be one of'):
            DynOPoolResNet(depth=42)
        with pytest.raises(ValueError, match='init_scales'):
            DynOPoolResNet(depth=18, init_scales=[0.5, 0.5])
        with pytest.raises(ValueError, match='init_scale'):
            DynOPoolResNet(depth=18, init_scales=[0.25, 0.5, -1, 0.5])
        with pytest.raises(ValueError, match='init_scales, not'):
            DynOPoolResNet(depth=18, dynopool_cfg=dict(init_scale=0.5))

    def test_mmseg_registry(self):
        from mmseg.registry import MODELS
        model = MODELS.build(dict(type='DynOPoolResNet', depth=18))
        assert isinstance(model, DynOPoolResNet)

    @pytest.mark.parametrize('registry', ['mmseg', 'mmpretrain'])
    def test_default_outputs_are_those_of_the_registrys_resnet(self, registry):
        """Built from mmseg's registry it returns mmseg's ResNet tuple (all
        four stages), from mmpretrain's mmpretrain's (the last stage)."""
        import importlib
        lib = importlib.import_module(f'{registry}.registry').MODELS
        x = torch.rand(1, 3, 64, 64)
        ours = lib.build(dict(type='DynOPoolResNet', depth=18))(x)
        human = lib.build(dict(type='ResNet', depth=18))(x)
        assert [o.shape for o in ours] == [o.shape for o in human]
        assert len(ours) == (4 if registry == 'mmseg' else 1)


class TestShapeAdaptorResNet:

    def test_residual_cell(self):
        model = ShapeAdaptorResNet_CIFAR(depth=18)
        blocks = [b for name in model.res_layers for b in getattr(model, name)]
        # stem + blocks[0..6]: positions 0, 2, 4, 6 -> blocks 1, 3, 5.
        sa_blocks = [
            i for i, b in enumerate(blocks) if b.shape_adaptor is not None
        ]
        assert sa_blocks == [1, 3, 5]
        assert [blocks[i].shape_adaptor
                for i in sa_blocks] == list(model.dynopools[1:])
        for i in sa_blocks:
            sa = blocks[i].shape_adaptor
            assert sa.residual and blocks[i].downsample[0].stride == (2, 2)
        # Mixed output = relu(2((1-a) G(shortcut) + a G(weights))).
        block = blocks[1].eval()
        x = torch.randn(1, 64, 12, 12)
        a = torch.sigmoid(block.shape_adaptor.alpha).item()
        size = block.shape_adaptor.output_size((12, 12))
        weights = block.norm2(
            block.conv2(block.relu(block.norm1(block.conv1(x)))))
        interp = lambda t: torch.nn.functional.interpolate(  # noqa: E731
            t, size, mode='bilinear', align_corners=True)
        expected = torch.relu(
            2 * ((1 - a) * interp(block.downsample(x)) + a * interp(weights)))
        torch.testing.assert_close(block(x), expected)
        # A block without an adaptor is the library block.
        plain = blocks[0].eval()
        torch.testing.assert_close(plain(x), BasicBlock.forward(plain, x))

    @pytest.mark.parametrize('depth', [18, 50])
    def test_blocks_come_from_make_res_layer_and_keep_with_cp(
            self, depth, monkeypatch):
        torch.manual_seed(0)
        ref = ShapeAdaptorResNet_CIFAR(depth, base_channels=8)
        torch.manual_seed(0)
        model = ShapeAdaptorResNet_CIFAR(depth, base_channels=8, with_cp=True)
        lib = BasicBlock if depth == 18 else Bottleneck
        blocks = [b for n in model.res_layers for b in getattr(model, n)]
        # Built as the library's own block type (a subclass), not swapped.
        assert all(isinstance(b, lib) and b.with_cp for b in blocks)
        assert all(type(b).forward is not lib.forward for b in blocks)
        x = torch.randn(2, 3, 32, 32, requires_grad=True)
        calls = []
        orig = torch.utils.checkpoint.checkpoint

        def spy(*args, **kwargs):
            calls.append(1)
            return orig(*args, **kwargs)

        monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', spy)
        out = model(x)[0]
        assert len(calls) == len(blocks)  # every block checkpointed
        torch.testing.assert_close(out, ref(x)[0])
        out.sum().backward()
        assert all(sa.alpha.grad is not None for sa in model.dynopools)

    def test_count_rounding_option(self):
        assert len(
            ShapeAdaptorResNet(18, input_size=224,
                               count_rounding='ceil').dynopools) == 7

    def test_bad_depth(self):
        with pytest.raises(KeyError, match='depth must be one of'):
            ShapeAdaptorResNet(depth=42)


def test_human_resnets_unchanged_by_registration():
    # The library classes keep their own blocks (we only subclass).
    assert ResNet.arch_settings[18][0] is BasicBlock
    assert ResNet_CIFAR(18).layer1[0].__class__ is BasicBlock
