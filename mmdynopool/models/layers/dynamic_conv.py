"""Inference-time dynamic stride / dilation / kernel size of a trained conv
(*The Untapped Potential of Off-the-Shelf CNNs*, WACV 2022, Sec. 3).

Convention:
    * The stored parameters never change; only how the kernel meets the
      input does.
    * Padding stays "same"-like, ``dilation * (k - 1) // 2``, so a stride
      ``s`` maps ``H`` to ``ceil(H / s)`` and stride ``1/2`` to ``2 H``.
    * Kernel size ``k != k0``: the kernel is resized bilinearly
      (``align_corners=False``: the kernel keeps its spatial extent, and
      ``k = 1`` takes the centre). The output is scaled by ``(k0 / k) ** 2``,
      the ratio of kernel areas: a resized kernel has ``(k / k0) ** 2`` as
      many taps with values of the same magnitude, so its response to a
      smooth input grows by that factor (exactly so for a constant kernel on
      a constant input); the scale undoes it. The bias is not scaled.
    * Stride ``1/2`` is a transposed convolution whose kernel is the trained
      one flipped spatially with its input / output channels swapped (per
      group), i.e. the trained kernel sliding over the zero-interleaved
      input (the paper's appendix).
    * A stride is a number (both axes) or an anisotropic pair ``(s_h,
      s_w)``: two positive integers, or two values from ``{1/2, 1}`` (a
      transposed convolution along the halved axes), e.g. ``(1, 2)`` or
      ``(0.5, 1)``, as the first author's later code allows. The paper's
      option sets are isotropic.
    * A trained ``padding_mode`` (reflect, replicate, circular) is kept at
      every option: the input is padded by it and the kernel then sees no
      implicit zeros. At stride ``1/2`` the input is padded before the zeros
      are interleaved (the transposed convolution of the padded input, its
      border cropped), so the padding holds input pixels, not zeros.
"""
from numbers import Integral, Real
from typing import Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

__all__ = [
    'DynamicConv2d', 'DynamicPool2d', 'dynamic_conv2d', 'STRIDES', 'DILATIONS',
    'KERNEL_SIZES', 'ATTRIBUTES', 'stride_pair', 'option_key',
    'check_attributes'
]

STRIDES = (0.5, 1, 2, 3, 4)
DILATIONS = (1, 2, 3, 4, 5)
KERNEL_SIZES = (1, 3, 5, 7, 9)
# What a dynamic layer may vary, in the order of its option tuples.
ATTRIBUTES = ('stride', 'dilation', 'kernel_size')


def _resize_kernel(weight: Tensor, k: int) -> Tensor:
    k0 = weight.shape[-1]
    if k == k0:
        return weight
    resized = F.interpolate(
        weight, size=(k, k), mode='bilinear', align_corners=False)
    return resized * (k0 / k)**2


def stride_pair(stride) -> Tuple[Union[int, float], Union[int, float]]:
    """``(s_h, s_w)`` of a stride option (a number or a pair), each ``0.5``
    or an ``int``.

    Args:
        stride (int | float | tuple): A stride option.

    Returns:
        tuple: ``(s_h, s_w)``.

    Example:
        >>> stride_pair(2), stride_pair((0.5, 1))
        ((2, 2), (0.5, 1))
    """
    pair = tuple(stride) if isinstance(stride, Sequence) else (stride, ) * 2
    return tuple(0.5 if v == 0.5 else int(v) for v in pair)


def dynamic_conv2d(input: Tensor,
                   weight: Tensor,
                   bias: Optional[Tensor] = None,
                   stride: Union[int, float, Tuple] = 1,
                   dilation: int = 1,
                   kernel_size: Optional[int] = None,
                   groups: int = 1,
                   padding_mode: str = 'zeros') -> Tensor:
    """Convolve with a trained square kernel at another stride / dilation /
    kernel size.

    Args:
        input (Tensor): ``(N, C_in, H, W)``.
        weight (Tensor): ``(C_out, C_in / groups, k0, k0)``, ``k0`` odd.
        bias (Tensor, optional): ``(C_out, )``.
        stride (int | float | tuple): ``0.5`` (up-sampling, transposed), a
            positive integer, or an anisotropic pair (two integers, or two
            values from ``{0.5, 1}``). Default: 1.
        dilation (int): Default: 1.
        kernel_size (int, optional): Odd size to resize the kernel to.
            Default: ``k0``.
        groups (int): Default: 1.
        padding_mode (str): As for ``nn.Conv2d``: ``'zeros'``,
            ``'reflect'``, ``'replicate'`` or ``'circular'``.
            Default: ``'zeros'``.

    Returns:
        Tensor: ``(N, C_out, ceil(H / s_h), ceil(W / s_w))``; an axis at
        ``1/2`` doubles.

    Example:
        >>> import torch
        >>> w = torch.rand(8, 4, 3, 3)
        >>> dynamic_conv2d(torch.rand(1, 4, 10, 10), w, stride=0.5,
        ...                kernel_size=5).shape
        torch.Size([1, 8, 20, 20])
        >>> dynamic_conv2d(torch.rand(1, 4, 10, 10), w, stride=(1, 2)).shape
        torch.Size([1, 8, 10, 5])
    """
    _check_stride('stride', stride)
    k = weight.shape[-1] if kernel_size is None else kernel_size
    w = _resize_kernel(weight, k)
    pad = dilation * (k - 1) // 2
    pair = stride_pair(stride)
    if 0.5 in pair:  # transposed along the halved axes
        up = tuple(2 if v == 0.5 else 1 for v in pair)
        # A halved axis reads ceil(pad / 2) input pixels beyond the border
        # (its kernel spans the zero-interleaved input); each padded pixel
        # becomes `up` output pixels, cropped off again by the padding.
        extra = tuple(-(-pad // 2) if u == 2 else pad for u in up)
        padding = (pad, pad)
        if padding_mode != 'zeros':
            input = F.pad(
                input, (extra[1], extra[1], extra[0], extra[0]),
                mode=padding_mode)
            padding = tuple(pad + u * e for u, e in zip(up, extra))
        out_c, in_per_group = w.shape[:2]
        wt = w.flip(-2, -1).reshape(groups, out_c // groups, in_per_group, k,
                                    k)
        wt = wt.transpose(1, 2).reshape(groups * in_per_group, out_c // groups,
                                        k, k)
        return F.conv_transpose2d(
            input,
            wt,
            bias,
            stride=up,
            padding=padding,
            output_padding=tuple(u - 1 for u in up),
            groups=groups,
            dilation=dilation)
    if padding_mode != 'zeros':  # what nn.Conv2d does for these modes
        return F.conv2d(
            F.pad(input, (pad, ) * 4, mode=padding_mode),
            w,
            bias,
            stride=pair,
            dilation=dilation,
            groups=groups)
    return F.conv2d(
        input,
        w,
        bias,
        stride=pair,
        padding=pad,
        dilation=dilation,
        groups=groups)


def _share_conv(cls, conv: nn.Conv2d, **kwargs) -> nn.Conv2d:
    """An instance of the ``nn.Conv2d`` subclass ``cls`` configured like
    ``conv`` and holding its very parameters."""
    new = cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
        device='meta',
        **kwargs)
    new.weight, new.bias = conv.weight, conv.bias
    new.train(conv.training)
    return new


def _is_stride(value) -> bool:
    return not isinstance(value, bool) and isinstance(
        value, Real) and (value == 0.5 or
                          (float(value).is_integer() and value >= 1))


def _check_stride(name: str, value) -> None:
    """0.5, a positive integer, or a pair of positive integers or of values
    from ``{0.5, 1}``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        ok = len(value) == 2 and all(_is_stride(v) for v in value) and (all(
            v >= 1 for v in value) or all(v in (0.5, 1) for v in value))
    else:
        ok = _is_stride(value)
    if not ok:
        raise ValueError(f'{name} must be 0.5, a positive integer or a pair '
                         '(s_h, s_w) of positive integers or of values from '
                         f'{{0.5, 1}}, got {value!r}')


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_option_type(name: str, value) -> None:
    """An option value is an ``int`` (a stride may also be ``0.5`` or a pair
    of such): ``5.0 == 5`` would pass the membership test and fail deep in
    the forward (``F.interpolate`` takes no float size)."""
    if name == 'stride':
        values = value if isinstance(value, tuple) else (value, )
        if not all(
                _is_int(v) or (v == 0.5 and not isinstance(v, bool))
                for v in values):
            raise TypeError('stride must be 0.5 or an int (or a pair of '
                            f'them), got {value!r}')
    elif not _is_int(value):
        raise TypeError(f'{name} must be an int, got {value!r}')


def _check_options(name: str, values, odd: bool = False) -> None:
    """A non-empty sequence of positive integers (odd ones for kernel sizes,
    which keep "same" padding only when odd)."""
    ok = isinstance(values, Sequence) and not isinstance(values, str) and \
        len(values) > 0 and all(
            isinstance(v, Integral) and not isinstance(v, bool) and v >= 1
            and (v % 2 == 1 or not odd) for v in values)
    if not ok:
        kind = 'odd positive integers' if odd else 'positive integers'
        raise ValueError(f'{name} must be a non-empty sequence of {kind}, '
                         f'got {values!r}')


@MODELS.register_module()
class DynamicConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose stride, dilation and kernel size can be changed
    between forward passes (``set_option``) without touching its trained
    parameters.

    It *is* a ``Conv2d`` (``weight`` / ``bias`` under the same keys), so a
    model converted with :meth:`from_conv` loads and saves the original
    checkpoints. ``stride`` / ``dilation`` / ``kernel_size`` keep the trained
    values; the current choice is :attr:`option`.

    Args:
        *args: As for ``nn.Conv2d`` (a square, odd kernel).
        strides (Sequence): Allowed strides, numbers or ``(s_h, s_w)``
            pairs. Default: ``STRIDES``.
        dilations (Sequence[int]): Allowed dilations. Default: ``DILATIONS``.
        kernel_sizes (Sequence[int]): Allowed sizes. Default:
            ``KERNEL_SIZES``.
        slot (str, optional): The paper's layer letter (``'A'``-``'D'``)
            when this is one of the four dynamic layers of a network
            (:func:`~mmdynopool.models.convert_to_dynamic` sets it).
            Default: None.
        slot_attributes (Sequence[str]): What the slot varies there.
            Default: all of :data:`ATTRIBUTES`.
        **kwargs: As for ``nn.Conv2d``.

    Example:
        >>> import torch
        >>> conv = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        >>> layer = DynamicConv2d.from_conv(conv)
        >>> layer.set_option(stride=3, kernel_size=5)
        >>> layer(torch.rand(1, 4, 12, 12)).shape
        torch.Size([1, 8, 4, 4])
        >>> layer.option
        (3, 1, 5)
    """
    ATTRIBUTES = ATTRIBUTES

    def __init__(self,
                 *args,
                 strides: Sequence = STRIDES,
                 dilations: Sequence[int] = DILATIONS,
                 kernel_sizes: Sequence[int] = KERNEL_SIZES,
                 slot: Optional[str] = None,
                 slot_attributes: Sequence[str] = ATTRIBUTES,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slot = slot
        self.slot_attributes = check_attributes(slot_attributes,
                                                'slot_attributes')
        k0 = self.kernel_size
        if k0[0] != k0[1] or k0[0] % 2 == 0:
            raise ValueError('DynamicConv2d needs a square, odd kernel; got '
                             f'kernel_size={k0}')
        if self.stride[0] != self.stride[1] or \
                self.dilation[0] != self.dilation[1]:
            raise ValueError('DynamicConv2d needs equal strides and '
                             f'dilations per axis; got stride={self.stride}'
                             f', dilation={self.dilation}')
        if not isinstance(strides, Sequence) or isinstance(strides,
                                                           str) or not strides:
            raise ValueError('strides must be a non-empty sequence, got '
                             f'{strides!r}')
        for s in strides:
            _check_stride('strides', s)
        _check_options('dilations', dilations)
        _check_options('kernel_sizes', kernel_sizes, odd=True)
        # Strides as set_option takes them: 0.5 or ints (2.0 -> 2).
        self.options = dict(
            stride=tuple(
                stride_pair(v) if isinstance(v, Sequence) else stride_pair(v
                                                                           )[0]
                for v in strides),
            dilation=tuple(dilations),
            kernel_size=tuple(kernel_sizes))
        self.default = (self.stride[0], self.dilation[0], k0[0])
        self.reset_option()

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kwargs) -> 'DynamicConv2d':
        """A dynamic conv sharing ``conv``'s parameters (not copies)."""
        return _share_conv(cls, conv, **kwargs)

    @property
    def option(self) -> tuple:
        """Current ``(stride, dilation, kernel_size)``."""
        return tuple(self._option[a] for a in self.ATTRIBUTES)

    def reset_option(self) -> None:
        """Back to the trained configuration."""
        self._option = dict(zip(self.ATTRIBUTES, self.default))

    def set_option(self, stride=None, dilation=None, kernel_size=None) -> None:
        """Change any of the three; ``None`` keeps the current value.

        Args:
            stride (int | float | tuple, optional): One of
                ``options['stride']``.
            dilation (int, optional): One of ``options['dilation']``.
            kernel_size (int, optional): One of ``options['kernel_size']``.
        """
        for i, (name, value) in enumerate(
                zip(self.ATTRIBUTES, (stride, dilation, kernel_size))):
            if value is None:
                continue
            if isinstance(value, list):
                value = tuple(value)
            _check_option_type(name, value)
            allowed = set(self.options[name]) | {self.default[i]}
            if value not in allowed:
                raise ValueError(f'{name}={value!r} is not allowed; choose '
                                 f'from {sorted(allowed, key=option_key)}')
            self._option[name] = value

    def forward(self, x: Tensor) -> Tensor:
        if self.option == self.default:
            return super().forward(x)
        stride, dilation, k = self.option
        return dynamic_conv2d(x, self.weight, self.bias, stride, dilation, k,
                              self.groups, self.padding_mode)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', option={self.option}'


def check_attributes(attributes, name: str = 'attributes') -> Tuple[str, ...]:
    """``attributes`` as a tuple of distinct names from :data:`ATTRIBUTES`
    (one name may be given as a string); a ValueError naming ``name``
    otherwise.

    Args:
        attributes (str | Sequence[str]): The attribute names.
        name (str): The parameter name for the error. Default:
            ``'attributes'``.

    Returns:
        tuple[str]: The names.
    """
    attributes = (attributes, ) if isinstance(attributes, str) else \
        tuple(attributes)
    if not attributes or len(set(attributes)) != len(attributes) or any(
            a not in ATTRIBUTES for a in attributes):
        raise ValueError(f'{name} must be distinct names from {ATTRIBUTES}, '
                         f'got {attributes!r}')
    return attributes


def option_key(value):
    """Sort key of option values, numbers and ``(s_h, s_w)`` pairs alike
    (by their pair, so ``1 < (1, 2) < (2, 1) < 2``).

    Args:
        value (int | float | tuple): An option value.

    Returns:
        tuple: The key.
    """
    if isinstance(value, Sequence):
        return tuple(float(v) for v in value) + (1, )
    return (float(value), float(value), 0)


@MODELS.register_module()
class DynamicPool2d(nn.Module):
    """A trained max / average pooling (DenseNet's stem and transitions)
    whose stride can change between forward passes; kernel and padding stay.
    Only integer strides: the paper gives pools no fractional stride. A
    non-default stride pools with ``ceil_mode=True`` (average over the part
    of the window inside the input), so a map smaller than the window after
    earlier large strides still yields one value instead of an error.

    Args:
        pool (nn.MaxPool2d | nn.AvgPool2d): The pooling layer.
        strides (Sequence[int]): Allowed strides. Default: ``(1, 2, 3, 4)``.
        slot (str, optional): As for :class:`DynamicConv2d`. Default: None.

    Example:
        >>> import torch
        >>> layer = DynamicPool2d(nn.AvgPool2d(2, 2))
        >>> layer.set_option(stride=4)
        >>> layer(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 3, 4, 4])
    """
    ATTRIBUTES = ('stride', )

    def __init__(self,
                 pool: nn.Module,
                 strides: Sequence[int] = (1, 2, 3, 4),
                 slot: Optional[str] = None) -> None:
        super().__init__()
        self.slot, self.slot_attributes = slot, self.ATTRIBUTES
        if not isinstance(pool, (nn.MaxPool2d, nn.AvgPool2d)):
            raise TypeError('pool must be nn.MaxPool2d or nn.AvgPool2d, got '
                            f'{type(pool).__name__}')
        if not isinstance(strides, Sequence) or isinstance(
                strides, str) or not strides or not all(
                    isinstance(v, Real) and not isinstance(v, bool)
                    and float(v).is_integer() and v >= 1 for v in strides):
            raise ValueError('strides of a pool must be a non-empty sequence '
                             'of positive integers (no (s_h, s_w) pairs: '
                             f'pools keep isotropic strides), got {strides!r}')
        self.pool = pool
        stride = pool.stride if isinstance(pool.stride, int) else \
            pool.stride[0]
        self.options = dict(stride=tuple(int(s) for s in strides))
        self.default = (stride, )
        self.reset_option()

    @property
    def option(self) -> tuple:
        return (self.stride, )

    def reset_option(self) -> None:
        self.stride = self.default[0]

    def set_option(self, stride=None) -> None:
        """Change the stride.

        Args:
            stride (int, optional): One of ``options['stride']`` or the trained
                stride; None keeps the current value.
        """
        allowed = set(self.options['stride']) | set(self.default)
        if stride is not None and stride not in allowed:
            raise ValueError(f'stride={stride!r} is not allowed; choose from '
                             f'{sorted(allowed)}')
        if stride is not None:
            self.stride = int(stride)

    def forward(self, x: Tensor) -> Tensor:
        p = self.pool
        if self.option == self.default:
            return p(x)
        # ceil_mode so that a map smaller than the window after earlier
        # large strides still gives one output (its valid part).
        if isinstance(p, nn.MaxPool2d):
            return F.max_pool2d(
                x,
                p.kernel_size,
                self.stride,
                p.padding,
                p.dilation,
                ceil_mode=True)
        return F.avg_pool2d(
            x,
            p.kernel_size,
            self.stride,
            p.padding,
            ceil_mode=True,
            count_include_pad=False,
            divisor_override=p.divisor_override)

    def extra_repr(self) -> str:
        return f'option={self.option}, default={self.default}'
