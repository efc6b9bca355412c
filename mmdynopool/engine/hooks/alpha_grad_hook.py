"""Choose the space in which the optimizer steps DynOPool's alpha."""
from typing import List

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

from ...models.layers import DynOPool2d
from ...utils.inspection import unwrap_model

__all__ = ['AlphaGradHook', 'rescale_alpha_grads', 'SPACES']

#: space -> power k of the gradient factor ``(alpha / alpha_0) ** k``.
SPACES = {'alpha': 0, 'log': 2, 'scale': 4}


def rescale_alpha_grads(model: nn.Module, space: str = 'log') -> List:
    """Make the optimizer step every DynOPool alpha of ``model`` in
    ``space``: a gradient hook multiplies alpha's gradient by
    ``(alpha / alpha_0) ** k`` (``alpha_0 = 1 / init_scale``, so the factor
    is 1 at the initial scale and the first steps are the paper's).

    To first order the optimizer then steps ``log r`` by
    ``lr * dL/d log r`` (``space='log'``, ``k = 2``: the same relative
    step at every scale), ``r`` by ``lr * dL/dr`` (``'scale'``, ``k = 4``)
    or ``alpha`` as the paper does (``'alpha'``, ``k = 0``: no hook). Every
    DynOPool2d alpha with ``requires_grad`` is rescaled once, shared ones
    included; Shape Adaptor's alphas are not touched. Why ``'log'``:
    ``docs/conventions.md`` ("The space in which SGD steps alpha").

    Args:
        model (nn.Module): Any model holding :class:`DynOPool2d` layers.
        space (str): ``'alpha'``, ``'log'`` or ``'scale'``. Default:
            ``'log'``.

    Returns:
        list: The gradient-hook handles; ``h.remove()`` on each undoes it.

    Example:
        >>> import torch
        >>> from mmdynopool.models import DynOPool2d
        >>> pool = DynOPool2d(init_scale=0.5)
        >>> handles = rescale_alpha_grads(pool, 'log')
        >>> with torch.no_grad():
        ...     _ = pool.alpha.fill_(4.0)  # r = 0.25: alpha twice alpha_0
        >>> pool(torch.rand(1, 1, 8, 8)).sum().backward()
        >>> len(handles)
        1
    """
    if space not in SPACES:
        raise ValueError(f'space must be one of {tuple(SPACES)}, got '
                         f'{space!r}')
    k = SPACES[space]
    handles, seen = [], set()
    for m in model.modules():
        if not isinstance(m, DynOPool2d) or id(m.alpha) in seen:
            continue
        seen.add(id(m.alpha))
        if k == 0 or not m.alpha.requires_grad:
            continue
        alpha0 = m.alpha.new_tensor([1 / r for r in m.init_scale])
        handles.append(m.alpha.register_hook(_rescale(m.alpha, alpha0, k)))
    return handles


@HOOKS.register_module()
class AlphaGradHook(Hook):
    """Step DynOPool's ``alpha`` as if the parameter were ``log r`` or ``r``.

    The paper learns ``alpha = 1 / r`` (Eq. 6) with plain SGD, which moves
    ``r`` by ``lr * r^4 * dL/dr``: a layer drifting towards up-sampling
    takes ever larger steps. Before training this hook calls
    :func:`rescale_alpha_grads` on the model (``space='log'``: the same
    relative step at every scale); after training it removes the gradient
    hooks. The forward pass, the parameter, its checkpoint key and the
    learning rate stay the paper's; only the optimizer's geometry changes
    (momentum and weight decay act on the rescaled gradient). The toy
    configs add it, the paper-scale configs follow the paper without it;
    the measurements behind it are in ``docs/conventions.md``.

    Args:
        space (str): ``'alpha'`` (the paper: the hook does nothing),
            ``'log'`` or ``'scale'``. Default: ``'log'``.

    Example:
        >>> custom_hooks = [dict(type='AlphaGradHook', space='log')]
    """

    priority = 'NORMAL'

    def __init__(self, space: str = 'log') -> None:
        if space not in SPACES:
            raise ValueError(f'space must be one of {tuple(SPACES)}, got '
                             f'{space!r}')
        self.space = space
        self._handles = []

    def before_train(self, runner) -> None:
        self._handles = rescale_alpha_grads(
            unwrap_model(runner.model), self.space)

    def after_train(self, runner) -> None:
        # mmengine calls no hook when training raises: a model that outlives
        # a failed run in the same process keeps the rescaled gradient.
        for h in self._handles:
            h.remove()
        self._handles = []


def _rescale(alpha, alpha0, k):

    def hook(grad):
        return grad * (alpha.detach() / alpha0)**k

    return hook
