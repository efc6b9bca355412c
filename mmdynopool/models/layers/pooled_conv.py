"""``Conv_1 o Pool``: a stride-1 convolution fed by a (shared) resizing layer.

This is how the backbones replace a strided convolution without renaming a
single checkpoint key: the convolution keeps its ``weight``/``bias`` names and
only its stride changes, while the resizing layer it applies first lives (and
is registered, once) elsewhere, typically shared by every path that must
agree on one resolution.
"""
from typing import Dict

from torch import Tensor, nn

__all__ = ['PooledConv2d', 'PoolAfter', 'hold']


def hold(owner: nn.Module, name: str, module: nn.Module) -> None:
    """``owner.<name> = module`` held by reference, not as a child module.

    A resizing layer shared by several paths is registered once (in its
    backbone's ``dynopools``); the modules that call it hold it this way, so
    it appears in no other ``state_dict`` key and ``parameters()`` yields its
    ``alpha`` once.

    Args:
        owner (nn.Module): The module that calls ``module``.
        name (str): The attribute name.
        module (nn.Module): The held module.
    """
    object.__setattr__(owner, name, module)


class PooledConv2d(nn.Conv2d):
    """``conv(pool(x))`` with the convolution's stride set to 1.

    ``pool`` is held by reference, not registered as a child, so the
    convolution's ``state_dict`` keys stay exactly those of ``nn.Conv2d``.
    Register the pool on the owning model (it is what owns its ``alpha``).

    Args:
        *args: Passed to :class:`torch.nn.Conv2d` (``stride`` must be 1).
        pool (nn.Module): Resizing layer applied to the input first.
        **kwargs: Passed to :class:`torch.nn.Conv2d`.

    Example:
        >>> import torch
        >>> from mmdynopool.models import DynOPool2d
        >>> conv = PooledConv2d(8, 16, 3, padding=1, pool=DynOPool2d(0.5))
        >>> conv(torch.rand(1, 8, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
        >>> list(conv.state_dict())
        ['weight', 'bias']
    """

    def __init__(self, *args, pool: nn.Module, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.stride != (1, 1):
            raise ValueError('PooledConv2d resizes with its pool; stride must '
                             f'be 1, got {self.stride}')
        self.set_pool(pool)

    def set_pool(self, pool: nn.Module) -> None:
        """Set the pool that resizes the conv's output.

        Args:
            pool (nn.Module): The resizing layer, held by reference
                (:func:`hold`).
        """
        hold(self, 'pool', pool)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, pool: nn.Module) -> 'PooledConv2d':
        """A stride-1 copy of ``conv`` that shares its parameters.

        The copy is also an instance of ``conv``'s own class (a
        ``conv_cfg`` conv such as mmcv's ``ConvWS2d`` keeps its weight
        standardisation), holds the same parameters and buffers under the
        same keys, and is made without running a constructor: no
        re-initialisation draws from the random number generator, so a
        converted backbone leaves it where the library's left it.
        """
        new_cls = _pooled_class(type(conv)) if cls is PooledConv2d else cls
        new = new_cls.__new__(new_cls)
        nn.Module.__init__(new)  # its own (empty) registries and hooks
        for key, value in vars(conv).items():
            new.__dict__.setdefault(key, value)  # in_channels, eps, ...
        new._parameters.update(conv._parameters)
        new._buffers.update(conv._buffers)
        new._non_persistent_buffers_set |= conv._non_persistent_buffers_set
        new._modules.update(conv._modules)
        new.train(conv.training)
        new.stride = (1, 1)
        new.set_pool(pool)
        return new

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(self.pool(x))

    def extra_repr(self) -> str:
        return super().extra_repr() + f', pool=<{type(self.pool).__name__} ' \
            f'id={id(self.pool):#x}>'


#: ``PooledConv2d`` subclasses made for other conv classes, one per class.
_POOLED_CLASSES: Dict[type, type] = {nn.Conv2d: PooledConv2d}


def _pooled_class(conv_cls: type) -> type:
    """``PooledConv2d`` for ``nn.Conv2d``; for a subclass (``ConvWS2d``, a
    user's conv) a class deriving from both, whose forward is the subclass's
    on the pooled input."""
    if conv_cls not in _POOLED_CLASSES:
        _POOLED_CLASSES[conv_cls] = type(
            f'Pooled{conv_cls.__name__}', (PooledConv2d, conv_cls),
            dict(
                __module__=__name__,
                __doc__=f'``{conv_cls.__name__}`` fed by a pool; see '
                ':class:`PooledConv2d`.'))
    return _POOLED_CLASSES[conv_cls]


class PoolAfter(nn.Module):
    """``pool(module(x))``, with ``pool`` held by reference (not registered).

    Used to put a shared resizing layer right after an activation
    (``DynOPool o ReLU o Conv_1``) without touching checkpoint keys: wrap the
    parameter-free activation module in place.

    Args:
        module (nn.Module): Applied first (typically an activation).
        pool (nn.Module): Resizing layer applied to its output.

    Example:
        >>> import torch
        >>> from mmdynopool.models import DynOPool2d
        >>> act = PoolAfter(nn.ReLU(), DynOPool2d(0.5))
        >>> act(torch.rand(1, 2, 8, 8)).shape
        torch.Size([1, 2, 4, 4])
    """

    def __init__(self, module: nn.Module, pool: nn.Module) -> None:
        super().__init__()
        self.module = module
        hold(self, 'pool', pool)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.module(x))

    def extra_repr(self) -> str:
        return f'pool=<{type(self.pool).__name__} id={id(self.pool):#x}>'
