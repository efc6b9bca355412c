"""How a ResNet shortcut follows its block's dynamic stride (Untapped
Potential, Sec. 3.2): the residual sum must still line up when the block's
:class:`~.dynamic_conv.DynamicConv2d` changes its stride.
"""
from typing import Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

from .dynamic_conv import (DynamicConv2d, _check_stride, _share_conv,
                           stride_pair)
from .pooled_conv import hold

__all__ = [
    'SHORTCUTS', 'follow_shortcut', 'check_shortcut',
    'check_follow_at_trained_stride', 'FollowerConv2d', 'FollowerResize',
    'follow_stride'
]

#: How a shortcut follows a changed stride (see :func:`follow_shortcut`).
SHORTCUTS = ('avgpool', 'subsample')


def follow_shortcut(x: Tensor,
                    stride: Union[int, float],
                    shortcut: str,
                    op=None) -> Tensor:
    """A ResNet shortcut ``op`` (a 1x1 conv taking ``(x, stride)``, or the
    identity) at another stride, sized like the main path: ``ceil(H / s)``
    per axis, ``2 H`` for ``s = 1/2``.

    * ``'avgpool'`` (the first author's code, default): ``op`` at stride 1,
      then adaptive average pooling to the main path's size (nearest
      up-sampling for ``1/2``). Every input pixel reaches the sum.
    * ``'subsample'``: ``op`` at stride ``s`` (a 1x1 stride-``s`` identity
      keeps one pixel in ``s x s``); ``1/2`` up-samples the input 2x
      (nearest) first.

    For a 1x1 ``op`` both agree at ``s <= 1``. A transposed 1x1 is never
    used for ``1/2``: it would leave three zeros in every 2x2 cell of the
    identity path.

    Args:
        x (Tensor): The block input.
        stride (int | float | tuple): The main path's stride now.
        shortcut (str): ``'avgpool'`` or ``'subsample'``.
        op (callable, optional): The 1x1 conv, called as ``op(x, stride)``;
            None for the identity.

    Returns:
        Tensor: The shortcut output.
    """
    op = op or (lambda t, s: t[..., ::s[0], ::s[1]])
    h, w = x.shape[-2:]
    sh, sw = stride_pair(stride)
    if 0.5 in (sh, sw):
        up = (2. if sh == 0.5 else 1., 2. if sw == 0.5 else 1.)
        return op(F.interpolate(x, scale_factor=up, mode='nearest'), (1, 1))
    if shortcut == 'subsample' or (sh, sw) == (1, 1):
        return op(x, (sh, sw))
    return F.adaptive_avg_pool2d(op(x, (1, 1)), (-(-h // sh), -(-w // sw)))


def check_shortcut(shortcut: str) -> None:
    """``shortcut`` must be one of :data:`SHORTCUTS`.

    Args:
        shortcut (str): The value to check.
    """
    if shortcut not in SHORTCUTS:
        raise ValueError(f'shortcut must be one of {SHORTCUTS}, got '
                         f'{shortcut!r}')


def check_follow_at_trained_stride(value: bool) -> None:
    """``follow_at_trained_stride`` must be a bool.

    Args:
        value (bool): The value to check.
    """
    if not isinstance(value, bool):
        raise TypeError('follow_at_trained_stride must be a bool, got '
                        f'{value!r}')


class FollowerConv2d(nn.Conv2d):
    """A shortcut convolution (ResNet ``downsample``) that follows the stride
    of its block's :class:`DynamicConv2d` (the *leader*), so the residual sum
    still lines up.

    Its stride is ``leader stride x (own trained stride / leader trained
    stride)``; at its trained stride it is the trained conv, otherwise
    :func:`follow_shortcut` with ``shortcut`` (``'avgpool'``: the 1x1 at
    stride 1, then adaptive average pooling, as the first author's code
    does; ``'subsample'``: the 1x1 at the new stride). With
    ``follow_at_trained_stride`` it takes ``shortcut`` at its trained stride
    too (the first author's code: the pretrained strided 1x1 is never run
    at its stride). The leader is held by reference, not as a sub-module,
    so the state dict keeps the original keys.
    """

    @classmethod
    def from_conv(cls,
                  conv: nn.Conv2d,
                  leader: DynamicConv2d,
                  shortcut: str = 'avgpool',
                  follow_at_trained_stride: bool = False) -> 'FollowerConv2d':
        check_shortcut(shortcut)
        check_follow_at_trained_stride(follow_at_trained_stride)
        new = _share_conv(cls, conv)
        hold(new, 'leader', leader)
        new.shortcut = shortcut
        new.follow_at_trained_stride = follow_at_trained_stride
        return new

    def forward(self, x: Tensor) -> Tensor:
        stride = follow_stride(self.leader, self.stride[0])
        if stride_pair(stride) == self.stride and \
                not self.follow_at_trained_stride:
            return super().forward(x)
        return follow_shortcut(
            x, stride, self.shortcut,
            lambda t, s: F.conv2d(t, self.weight, self.bias, s, self.padding,
                                  self.dilation, self.groups))


class FollowerResize(nn.Module):
    """The identity shortcut of a block whose leader's stride changed
    (:func:`follow_shortcut` of the identity: adaptive average pooling by
    default, ``x[..., ::s, ::s]`` with ``shortcut='subsample'``, a 2x
    nearest up-sampling for ``s = 1/2``). No parameters.

    Args:
        leader (DynamicConv2d): The block's first strided conv.
        shortcut (str): ``'avgpool'`` or ``'subsample'``. Default:
            ``'avgpool'``.
    """

    def __init__(self,
                 leader: DynamicConv2d,
                 shortcut: str = 'avgpool') -> None:
        super().__init__()
        check_shortcut(shortcut)
        hold(self, 'leader', leader)
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        return follow_shortcut(x, follow_stride(self.leader, 1), self.shortcut)


def follow_stride(leader: DynamicConv2d,
                  own_default) -> Union[int, float, Tuple]:
    """Stride (a number, or a pair for an anisotropic leader) that keeps a
    follower at the leader's resolution.

    Args:
        leader (DynamicConv2d): The block's leading conv.
        own_default (int | tuple): The follower's trained stride.

    Returns:
        int | float | tuple: The stride.
    """
    pair = tuple(s * own_default / leader.default[0]
                 for s in stride_pair(leader.option[0]))
    _check_stride('follower stride', pair)
    pair = stride_pair(pair)
    return pair[0] if pair[0] == pair[1] else pair
