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
"""
from fractions import Fraction
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

__all__ = ['DynamicConv2d', 'dynamic_conv2d', 'STRIDES', 'DILATIONS',
           'KERNEL_SIZES']

STRIDES = (0.5, 1, 2, 3, 4)
DILATIONS = (1, 2, 3, 4, 5)
KERNEL_SIZES = (1, 3, 5, 7, 9)


def _resize_kernel(weight: Tensor, k: int) -> Tensor:
    k0 = weight.shape[-1]
    if k == k0:
        return weight
    resized = F.interpolate(weight, size=(k, k), mode='bilinear',
                            align_corners=False)
    return resized * (k0 / k)**2


def dynamic_conv2d(input: Tensor,
                   weight: Tensor,
                   bias: Optional[Tensor] = None,
                   stride: Union[int, float] = 1,
                   dilation: int = 1,
                   kernel_size: Optional[int] = None,
                   groups: int = 1) -> Tensor:
    """Convolve with a trained square kernel at another stride / dilation /
    kernel size.

    Args:
        input (Tensor): ``(N, C_in, H, W)``.
        weight (Tensor): ``(C_out, C_in / groups, k0, k0)``, ``k0`` odd.
        bias (Tensor, optional): ``(C_out, )``.
        stride (int | float): ``0.5`` (up-sampling, transposed) or a
            positive integer. Default: 1.
        dilation (int): Default: 1.
        kernel_size (int, optional): Odd size to resize the kernel to.
            Default: ``k0``.
        groups (int): Default: 1.

    Returns:
        Tensor: ``(N, C_out, ceil(H / s), ceil(W / s))``, ``2H x 2W`` for
        ``s = 1/2``.

    Example:
        >>> w = torch.rand(8, 4, 3, 3)
        >>> dynamic_conv2d(torch.rand(1, 4, 10, 10), w, stride=0.5,
        ...                kernel_size=5).shape
        torch.Size([1, 8, 20, 20])
    """
    k = weight.shape[-1] if kernel_size is None else kernel_size
    w = _resize_kernel(weight, k)
    pad = dilation * (k - 1) // 2
    if Fraction(stride).limit_denominator(8) == Fraction(1, 2):
        out_c, in_per_group = w.shape[:2]
        wt = w.flip(-2, -1).reshape(groups, out_c // groups, in_per_group, k,
                                    k)
        wt = wt.transpose(1, 2).reshape(groups * in_per_group,
                                        out_c // groups, k, k)
        return F.conv_transpose2d(
            input, wt, bias, stride=2, padding=pad, output_padding=1,
            groups=groups, dilation=dilation)
    return F.conv2d(input, w, bias, stride=int(stride), padding=pad,
                    dilation=dilation, groups=groups)


@MODELS.register_module()
class DynamicConv2d(nn.Module):
    """A trained ``nn.Conv2d`` whose stride, dilation and kernel size can be
    changed between forward passes (``set_option``); its parameters are the
    wrapped conv's, untouched, under the same keys (``conv.weight``).

    Args:
        conv (nn.Conv2d): A square-kernel, odd-size convolution.
        strides (Sequence): Allowed strides. Default: ``STRIDES``.
        dilations (Sequence[int]): Allowed dilations. Default: ``DILATIONS``.
        kernel_sizes (Sequence[int]): Allowed sizes. Default:
            ``KERNEL_SIZES``.

    Example:
        >>> layer = DynamicConv2d(nn.Conv2d(4, 8, 3, stride=2, padding=1))
        >>> layer.set_option(stride=3, kernel_size=5)
        >>> layer(torch.rand(1, 4, 12, 12)).shape
        torch.Size([1, 8, 4, 4])
        >>> layer.option
        (3, 1, 5)
    """

    def __init__(self,
                 conv: nn.Conv2d,
                 strides: Sequence = STRIDES,
                 dilations: Sequence[int] = DILATIONS,
                 kernel_sizes: Sequence[int] = KERNEL_SIZES) -> None:
        super().__init__()
        k0 = conv.kernel_size
        if k0[0] != k0[1] or k0[0] % 2 == 0:
            raise ValueError('DynamicConv2d needs a square, odd kernel; got '
                             f'kernel_size={k0}')
        if conv.stride[0] != conv.stride[1] or \
                conv.dilation[0] != conv.dilation[1]:
            raise ValueError('DynamicConv2d needs equal strides and '
                             f'dilations per axis; got stride={conv.stride}'
                             f', dilation={conv.dilation}')
        self.conv = conv
        self.options = dict(
            stride=tuple(strides), dilation=tuple(dilations),
            kernel_size=tuple(kernel_sizes))
        self.default = (conv.stride[0], conv.dilation[0], k0[0])
        self.reset_option()

    @property
    def option(self) -> tuple:
        """Current ``(stride, dilation, kernel_size)``."""
        return (self.stride, self.dilation, self.kernel_size)

    def reset_option(self) -> None:
        """Back to the trained configuration."""
        self.stride, self.dilation, self.kernel_size = self.default

    def set_option(self, stride=None, dilation=None,
                   kernel_size=None) -> None:
        """Change any of the three; ``None`` keeps the current value."""
        for name, value in (('stride', stride), ('dilation', dilation),
                            ('kernel_size', kernel_size)):
            if value is None:
                continue
            allowed = self.options[name] + (self.default[
                ('stride', 'dilation', 'kernel_size').index(name)], )
            if value not in allowed:
                raise ValueError(f'{name}={value!r} is not allowed; choose '
                                 f'from {sorted(set(allowed))}')
            setattr(self, name, value)

    def forward(self, x: Tensor) -> Tensor:
        c = self.conv
        return dynamic_conv2d(x, c.weight, c.bias, self.stride, self.dilation,
                              self.kernel_size, c.groups)

    def extra_repr(self) -> str:
        return f'option={self.option}, default={self.default}'
