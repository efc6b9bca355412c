"""Make the four "ABCD" layers of a trained CNN inference-time dynamic
(*The Untapped Potential of Off-the-Shelf CNNs*, WACV 2022, Sec. 3.2 and
appendix), and enumerate / apply option permutations.

Layers (in network order, named ``A``-``D``):

* ResNet / ResNeXt (any block with a ``downsample`` attribute: mmpretrain,
  mmseg, torchvision, timm): the first 3x3 conv of the first block of each
  stage (the bottleneck's ``conv2``, a basic block's ``conv1``). Its
  shortcut follows the main path's resolution (:class:`FollowerConv2d`,
  :class:`FollowerResize`).
* MobileNetV2: the 3x3 depthwise convs with a trained stride of 2.
* DenseNet: stride -> the stem max pool and the transition average pools
  (:class:`DynamicPool2d`); dilation / kernel size -> the first 3x3 conv
  after each of them (the first dense layer of each block).

A *permutation* is one option tuple per dynamic layer, each tuple holding
one value per dynamic attribute (``('stride', )``, or e.g.
``('stride', 'kernel_size')``).
"""
import itertools
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from torch import nn

from .layers.dynamic_conv import (ATTRIBUTES, DILATIONS, KERNEL_SIZES, STRIDES,
                                  DynamicConv2d, DynamicPool2d,
                                  check_attributes, option_key)
from .layers.shortcut import (FollowerConv2d, FollowerResize,
                              check_follow_at_trained_stride, check_shortcut)

__all__ = [
    'convert_to_dynamic', 'check_convert_args', 'DynamicLayers', 'ARCHS',
    'ATTRIBUTES'
]

ARCHS = ('resnet', 'mobilenet_v2', 'densenet')


class _Site(NamedTuple):
    """One layer to make dynamic."""
    slot: str  # 'A'-'D'
    name: str  # module name in the model
    module: nn.Module
    attributes: Tuple[str, ...]  # what it varies
    block: Optional[nn.Module]  # its residual block (shortcut follows)


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition('.')
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _is_conv3x3(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (3, 3)


def _detect_arch(model: nn.Module) -> str:
    names = {type(m).__name__.lower() for m in model.modules()}
    if any('denseblock' in n for n in names):
        return 'densenet'
    if any(
            hasattr(m, 'downsample') and hasattr(m, 'conv1')
            for m in model.modules()):
        return 'resnet'
    if any(_is_depthwise_s2(m) for m in model.modules()):
        return 'mobilenet_v2'
    raise ValueError('arch=None: cannot tell the architecture of '
                     f'{type(model).__name__}; pass arch= one of {ARCHS}')


def _is_depthwise_s2(m: nn.Module) -> bool:
    return (_is_conv3x3(m) and m.groups == m.in_channels == m.out_channels
            and m.groups > 1 and tuple(m.stride) == (2, 2))


def _resnet_sites(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(name, block)`` of the first residual block of every stage."""
    firsts, seen = [], set()
    for name, m in model.named_modules():
        if hasattr(m, 'downsample') and hasattr(m, 'conv1'):
            parent = name.rpartition('.')[0]
            if parent not in seen:
                seen.add(parent)
                firsts.append((name, m))
    return firsts


def check_convert_args(arch: Optional[str], layers: str) -> None:
    """``arch`` (``None`` or one of :data:`ARCHS`) and ``layers`` (letters
    from ``'ABCD'``) of :func:`convert_to_dynamic`, by name.

    Args:
        arch (str, optional): Architecture name or None (detected).
        layers (str): Dynamic layers, e.g. ``'ABCD'``.
    """
    if arch is not None and arch not in ARCHS:
        raise ValueError(f'arch must be one of {ARCHS}, got {arch!r}')
    if not isinstance(layers, str) or not layers or any(c not in 'ABCD'
                                                        for c in layers):
        raise ValueError(f"layers must be letters from 'ABCD', got "
                         f'{layers!r}')


def convert_to_dynamic(
        model: nn.Module,
        arch: Optional[str] = None,
        layers: str = 'ABCD',
        options: Optional[Dict[str, Sequence]] = None,
        shortcut: str = 'avgpool',
        follow_at_trained_stride: bool = False) -> 'DynamicLayers':
    """Make the paper's ABCD layers of ``model`` dynamic, in place.

    Parameters stay the same objects under the same state-dict keys, so
    trained checkpoints load into the converted model and back.

    Args:
        model (nn.Module): A ResNet / ResNeXt / MobileNetV2 / DenseNet
            backbone or a whole model containing one (mmpretrain, mmseg,
            torchvision or timm).
        arch (str, optional): One of :data:`ARCHS`; detected if ``None``.
        layers (str): Which of the four layers to make dynamic, e.g. ``'D'``
            or ``'ABCD'``. Default: ``'ABCD'``.
        options (dict, optional): Allowed values per attribute, applied to
            every layer, e.g. ``{'stride': (1, 2, 3, 4)}``; strides may be
            anisotropic ``(s_h, s_w)`` pairs, e.g. ``(1, (1, 2), (2, 1),
            2)``. Default: strides
            ``{1/2, 1, 2, 3, 4}`` except no up-sampling (``1/2``) in A and B
            (the paper's memory limit), and for pools ``{1, 2, 3, 4}``;
            dilations ``{1..5}``; kernel sizes ``{1, 3, 5, 7, 9}``.
        shortcut (str): How a ResNet shortcut follows a changed stride:
            ``'avgpool'`` (the first author's code: the 1x1 at stride 1,
            then adaptive average pooling to the main path's size) or
            ``'subsample'`` (the 1x1 at the new stride). See
            :func:`~mmdynopool.models.layers.shortcut.follow_shortcut`.
            Default: ``'avgpool'``.
        follow_at_trained_stride (bool): Also run ``shortcut`` where a
            block is at its trained stride (the first author's code: the
            strided 1x1 shortcut of blocks B-D becomes the 1x1 at stride 1
            and adaptive average pooling even there). Default: False (the
            pretrained strided 1x1 there, so the trained configuration is
            the trained network).

    Raises:
        ValueError: for a model that already has dynamic layers (convert
            once; :meth:`DynamicLayers.from_model` gives their handle).

    Returns:
        DynamicLayers: Handle to set permutations.

    Example:
        >>> from mmpretrain.models.backbones import ResNet
        >>> dyn = convert_to_dynamic(ResNet(50))
        >>> dyn.names, len(dyn.permutations(('stride', )))
        (['A', 'B', 'C', 'D'], 400)
    """
    converted = sorted({
        m.slot
        for m in model.modules() if getattr(m, 'slot', None) is not None
    })
    if converted:
        raise ValueError(f'{type(model).__name__} already has dynamic layers '
                         f'({", ".join(converted)}): convert a model once; '
                         'DynamicLayers.from_model(model) gives their handle')
    check_convert_args(arch, layers)
    check_follow_at_trained_stride(follow_at_trained_stride)
    arch = _detect_arch(model) if arch is None else arch
    check_shortcut(shortcut)
    options = dict(options or {})
    if options:
        check_attributes(tuple(options), 'options keys')

    def conv_kwargs(slot):
        strides = STRIDES if slot in 'CD' else tuple(s for s in STRIDES
                                                     if s >= 1)
        return dict(
            strides=options.get('stride', strides),
            dilations=options.get('dilation', DILATIONS),
            kernel_sizes=options.get('kernel_size', KERNEL_SIZES))

    sites: List[_Site] = []
    if arch == 'resnet':
        blocks = _resnet_sites(model)
        for slot, (bname, block) in zip('ABCD', blocks):
            cname, conv = next(
                (n, c) for n, c in block.named_children() if _is_conv3x3(c))
            sites.append(
                _Site(slot, f'{bname}.{cname}', conv, ATTRIBUTES, block))
    elif arch == 'mobilenet_v2':
        for slot, (name, conv) in zip(
                'ABCD',
            [(n, m) for n, m in model.named_modules() if _is_depthwise_s2(m)]):
            sites.append(_Site(slot, name, conv, ATTRIBUTES, None))
    else:
        pools = [(n, m) for n, m in model.named_modules()
                 if isinstance(m, (nn.MaxPool2d,
                                   nn.AvgPool2d)) and m.stride in (2, (2, 2))]
        blocks = [(n, m) for n, m in model.named_modules()
                  if 'denseblock' in type(m).__name__.lower()]
        for slot, (name, pool) in zip('ABCD', pools):
            sites.append(_Site(slot, name, pool, ('stride', ), None))
        for slot, (bname, block) in zip('ABCD', blocks):
            cname, conv = next(
                (n, m) for n, m in block.named_modules() if _is_conv3x3(m))
            sites.append(
                _Site(slot, f'{bname}.{cname}', conv,
                      ('dilation', 'kernel_size'), None))
    found = sorted({s.slot for s in sites})
    if found != list('ABCD'):
        raise ValueError(f'found dynamic layers {found} in '
                         f'{type(model).__name__} (arch={arch!r}), need '
                         'A-D: is it a four-stage network?')

    for slot, name, mod, attributes, block in sites:
        if slot not in layers:
            continue
        if isinstance(mod, nn.Conv2d):
            new = DynamicConv2d.from_conv(
                mod,
                slot=slot,
                slot_attributes=attributes,
                **conv_kwargs(slot))
        else:
            new = DynamicPool2d(
                mod, options.get('stride', (1, 2, 3, 4)), slot=slot)
        _set_module(model, name, new)
        if block is not None:  # the shortcut follows the main path
            down = block.downsample
            if down is None:
                block.downsample = FollowerResize(new, shortcut)
            else:
                convs = [(n, m) for n, m in down.named_modules()
                         if isinstance(m, nn.Conv2d)]
                if len(convs) != 1 or any(
                        isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))
                        for m in down.modules()):
                    raise ValueError(
                        f'{name}: shortcut {type(down).__name__} is not a '
                        'single strided conv (e.g. avg_down=True); its '
                        'stride cannot follow the dynamic layer')
                n, conv = convs[0]
                _set_module(
                    down, n,
                    FollowerConv2d.from_conv(conv, new, shortcut,
                                             follow_at_trained_stride))
    return DynamicLayers.from_model(model)


class DynamicLayers:
    """The dynamic layers of a converted model, by slot (``'A'``-``'D'``).

    Not a module: it holds references, so it can be rebuilt from any copy of
    a converted model with :meth:`from_model`.

    Args:
        modules (dict[str, list[nn.Module]]): Per slot, its dynamic layers.
    """

    def __init__(self, modules: Dict[str, List[nn.Module]]) -> None:
        self.modules = modules
        self.names = sorted(modules)

    @classmethod
    def from_model(cls, model: nn.Module) -> 'DynamicLayers':
        found: Dict[str, List[nn.Module]] = {}
        for m in model.modules():
            if getattr(m, 'slot', None) is not None:
                found.setdefault(m.slot, []).append(m)
        if not found:
            raise ValueError(f'{type(model).__name__} has no dynamic layers; '
                             'convert it with convert_to_dynamic first')
        return cls(found)

    def _owner(self, name: str, attribute: str) -> nn.Module:
        for m in self.modules[name]:
            if attribute in m.slot_attributes:
                return m
        raise ValueError(f'layer {name} has no dynamic {attribute!r}')

    def choices(self, name: str, attribute: str) -> tuple:
        """Allowed values of ``attribute`` in layer ``name``, sorted.

        Args:
            name (str): A slot, ``'A'``-``'D'``.
            attribute (str): ``'stride'``, ``'dilation'`` or ``'kernel_size'``.

        Returns:
            tuple: The values.
        """
        m = self._owner(name, attribute)
        return tuple(
            sorted(
                set(m.options[attribute]) | {self._default(name, attribute)},
                key=option_key))

    def _default(self, name: str, attribute: str):
        m = self._owner(name, attribute)
        return m.default[m.ATTRIBUTES.index(attribute)]

    def permutations(
        self, attributes: Sequence[str] = ('stride', )) -> List[tuple]:
        """All permutations: tuples over layers of per-layer value tuples
        (one value per attribute).

        Args:
            attributes (Sequence[str]): The attributes that vary. Default:
                ``('stride', )``.

        Returns:
            list[tuple]: Every permutation, in :func:`itertools.product` order.
        """
        attributes = check_attributes(attributes)
        per_layer = [
            list(itertools.product(*(self.choices(n, a) for a in attributes)))
            for n in self.names
        ]
        return list(itertools.product(*per_layer))

    def default(self, attributes: Sequence[str] = ('stride', )) -> tuple:
        """The trained configuration as a permutation.

        Args:
            attributes (Sequence[str]): The attributes of the permutation.
                Default: ``('stride', )``.

        Returns:
            tuple: The trained values, one tuple per layer.
        """
        attributes = check_attributes(attributes)
        return tuple(
            tuple(self._default(n, a) for a in attributes) for n in self.names)

    def apply(
        self,
        permutation: Sequence[Sequence],
        attributes: Sequence[str] = ('stride', )
    ) -> None:
        """Set every dynamic layer; attributes not named keep their value.

        Args:
            permutation (Sequence[Sequence]): Per layer, one value per
                attribute (what :meth:`permutations` yields).
            attributes (Sequence[str]): The attributes the values set. Default:
                ``('stride', )``.
        """
        attributes = check_attributes(attributes)
        if len(permutation) != len(self.names) or any(
                len(p) != len(attributes) for p in permutation):
            raise ValueError(
                f'permutation {permutation!r} must hold {len(self.names)} '
                f'tuples (layers {self.names}) of {len(attributes)} values '
                f'({attributes})')
        for name, values in zip(self.names, permutation):
            for attribute, value in zip(attributes, values):
                self._owner(name, attribute).set_option(**{attribute: value})

    def reset(self) -> None:
        """Every layer back to its trained configuration."""
        for mods in self.modules.values():
            for m in mods:
                m.reset_option()


def option_text(value) -> str:
    """``2`` -> ``'2'``, ``0.5`` -> ``'0.5'``, ``(1, 2)`` -> ``'1x2'``."""
    if isinstance(value, Sequence):
        return 'x'.join(f'{v:g}' for v in value)
    return f'{value:g}'


def parse_option_text(text: str):
    """Inverse of :func:`option_text`."""
    if 'x' in text:
        return tuple(parse_option_text(v) for v in text.split('x'))
    return float(text) if '.' in text else int(text)


def permutation_key(permutation: Sequence[Sequence]) -> str:
    """Compact text of a permutation: layers by spaces, attributes by '/',
    an anisotropic stride as ``s_hxs_w`` (``'1 2 0.5 4'``,
    ``'2/3 1/1 2/5 2/3'`` or ``'1 1x2 2 2x1'``)."""
    return ' '.join('/'.join(option_text(v) for v in p) for p in permutation)


def parse_permutation_key(key: str) -> tuple:
    """Inverse of :func:`permutation_key`."""
    return tuple(
        tuple(parse_option_text(v) for v in p.split('/')) for p in key.split())
