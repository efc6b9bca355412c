"""Choose the space in which the optimizer steps DynOPool's alpha."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...models.layers import DynOPool2d
from ...utils.inspection import unwrap_model

__all__ = ['AlphaGradHook']

#: space -> power k of the gradient factor ``(alpha / alpha_0) ** k``.
SPACES = {'alpha': 0, 'log': 2, 'scale': 4}


@HOOKS.register_module()
class AlphaGradHook(Hook):
    """Step DynOPool's ``alpha`` as if the parameter were ``log r`` or ``r``.

    The paper learns ``alpha = 1 / r`` (Eq. 6) with plain SGD. A step
    ``d alpha`` moves the scale by ``d r = -r^2 d alpha`` and the loss's
    gradient on alpha is ``dL/d alpha = -r^2 dL/dr``, so a plain SGD step
    moves ``r`` by ``lr * r^4 * dL/dr``: 16x the step at ``r = 0.5`` once a
    layer reaches ``r = 1``, 256x at ``r = 2``. With alpha gradients as
    noisy as they are per batch (README, toy studies: the sign of layer 1's
    gradient agrees with its mean in 2 of 3 batches), a layer that drifts
    towards up-sampling takes ever larger random steps and runs away past
    the 16x cap within a few dozen iterations: 3 of 5 stretch-H control
    runs under ``space='alpha'`` (the transposition control then holds in
    2 of 5 seeds), none of the 75 toy runs under ``space='log'`` (5 of 5).

    This hook multiplies the gradient of every DynOPool alpha by
    ``(alpha / alpha_0) ** k`` (``alpha_0 = 1 / init_scale``, the config's
    value, so the factor is 1 at the initial scale and the first steps are
    the paper's). To first order the optimizer then steps

    * ``space='log'`` (``k = 2``): ``log r`` by ``lr_0 * dL/d log r``, the
      same relative step at every scale, and the GMACs loss's push
      (``dL_GMACs / d log r = L_GMACs`` of the layers it governs) grows
      with the cost it penalises;
    * ``space='scale'`` (``k = 4``): ``r`` by ``lr_0 * dL/dr``;
    * ``space='alpha'`` (``k = 0``): the paper (the hook does nothing).

    The forward pass, the parameter, its checkpoint key and the learning
    rate stay the paper's; only the optimizer's geometry changes. Momentum
    and weight decay act on the rescaled gradient (the configs set no decay
    on alpha). Every DynOPool2d alpha with ``requires_grad`` is rescaled
    (an alpha shared by several layers once); Shape Adaptor's alphas are
    not touched.

    The paper-scale configs (CIFAR-100, ImageNet, Aircraft, VOC) follow
    the paper and do not add this hook; the toy configs do.

    Args:
        space (str): ``'alpha'``, ``'log'`` or ``'scale'``. Default:
            ``'log'``.

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
        k = SPACES[self.space]
        model = runner.model
        model = unwrap_model(model)
        seen = set()
        for m in model.modules():
            if not isinstance(m, DynOPool2d) or id(m.alpha) in seen:
                continue
            seen.add(id(m.alpha))
            if k == 0 or not m.alpha.requires_grad:
                continue
            alpha0 = m.alpha.new_tensor([1 / r for r in m.init_scale])
            self._handles.append(
                m.alpha.register_hook(_rescale(m.alpha, alpha0, k)))

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
