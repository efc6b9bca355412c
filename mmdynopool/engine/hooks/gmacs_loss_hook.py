"""Adds ``lambda * L_GMACs`` (DynOPool paper, Eq. 7-8) to the training loss."""
import math
from numbers import Integral, Real
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...utils.inspection import unwrap_model
from ..gmacs import GMACsCounter

__all__ = ['GMACsLossHook', 'gmacs_loss_hooks']

#: What ``GMACs[l]`` of Eq. (7) counts (see :class:`GMACsLossHook`).
COUNTS = ('batch', 'image')


@HOOKS.register_module()
class GMACsLossHook(Hook):
    """Add ``loss_weight * L_GMACs`` to the model's loss dict.

    At ``before_run`` (so before any checkpoint is loaded or resumed, i.e. at
    the config's initial scales) it counts every conv / linear layer's GMACs
    on one ``input_size`` input and finds which DynOPool governs each
    layer's size (:class:`GMACsCounter`). Then, on every forward in
    ``mode='loss'``, a forward hook on the model adds the key ``loss_name``
    (it contains ``loss``, so mmengine sums and logs it). Its value is
    ``loss_weight * sum_l ratio_l * GMACs_l`` with the real integer sizes of
    this iteration, and its gradient reaches every upstream alpha through the
    straight-through sizes. ``loss_weight=0`` installs nothing.

    **What GMACs[l] counts** (``count``). Eq. (7) sums "GMACs counts" but
    does not say of what input. ``'batch'`` (default) counts the GMACs of
    the training batch this process runs (per-image GMACs times the batch
    size, as a FLOP counter run on that batch reports them); ``'image'``
    counts one image. The paper's lambdas only behave as in the paper under
    ``'batch'``. VGG-16 / CIFAR-100 (Table A) separates DynOPool-S from -B
    by lambda alone (2.2e-4 vs 1.59e-5, same initial scales), and their
    first layers end 0.66 (h) and 1.29 (w) apart in alpha. Per image,
    ``lambda * L_0 = 2.2e-4 * 0.313 = 6.9e-5``. The first layer governs about
    90 % of the GMACs, so the loss's gradient on its alpha is
    ``lambda * 0.9 * L_0 / alpha = 3.1e-5``. At the paper's alpha
    learning rate (1e-2, cosine, mean 5e-3) with momentum 0.9 (x10) over
    97,750 steps, the GMACs loss alone can move that alpha by at most
    ``97750 * 5e-3 * 10 * 3.1e-5 = 0.15``. That is too little to separate
    S from B. Per batch (x128), the bound is 19. The initial penalty
    ``lambda * L_0`` is then 9e-3 (CIFAR VGG-16-S), 0.098 (ImageNet VGG-16-S,
    64 images per GPU) and 0.092 (HRNet-W48 VOC, batch 16): a few per cent of
    the task loss, where a regulariser usually sits. In mega-MACs, the other
    reading that passes the bound, VOC's penalty would be 5.8, above the
    cross-entropy itself. The toy study in the README measures both
    settings.

    Args:
        loss_weight (float): ``lambda`` of Eq. (8), e.g. 7e-5 for HRNet-W48
            on VOC.
        input_size (Sequence[int]): ``(H, W)`` of the training crop, the
            reference for the initial GMACs.
        in_channels (int): Input channels. Default: 3.
        count (str): What ``GMACs[l]`` counts: ``'batch'`` (the per-process
            training batch) or ``'image'``. Default: ``'batch'``.
        loss_name (str): Key in the loss dict. Default: ``'loss_gmacs'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 loss_weight: float,
                 input_size: Sequence[int],
                 in_channels: int = 3,
                 count: str = 'batch',
                 loss_name: str = 'loss_gmacs') -> None:
        if isinstance(loss_weight, bool) or not isinstance(loss_weight,
                                                           Real):
            raise TypeError('loss_weight (lambda) must be a real number, got '
                            f'{loss_weight!r}')
        if not (math.isfinite(loss_weight) and loss_weight >= 0):
            raise ValueError('loss_weight (lambda) must be finite and >= 0, '
                             f'got {loss_weight!r}')
        if not (isinstance(input_size, Sequence) and len(input_size) == 2
                and all(isinstance(v, Integral) and not isinstance(v, bool)
                        and v >= 1 for v in input_size)):
            raise ValueError('input_size must be (H, W) with two integers '
                             f'>= 1, got {input_size!r}')
        if isinstance(in_channels, bool) or not isinstance(
                in_channels, Integral) or in_channels < 1:
            raise ValueError('in_channels must be an integer >= 1, got '
                             f'{in_channels!r}')
        if count not in COUNTS:
            raise ValueError(f'count must be one of {COUNTS}, got {count!r}')
        if 'loss' not in loss_name:
            raise ValueError("loss_name must contain 'loss' so that mmengine "
                             f'adds it to the total loss, got {loss_name!r}')
        self.loss_weight = float(loss_weight)
        self.input_size = tuple(int(v) for v in input_size)
        self.in_channels = int(in_channels)
        self.count = count
        self.loss_name = loss_name
        self.counter: Optional[GMACsCounter] = None
        self._handles = []

    def before_run(self, runner) -> None:
        if self.loss_weight == 0:
            return
        model = unwrap_model(runner.model)
        self.counter = GMACsCounter(
            model,
            self.input_size,
            self.in_channels,
            forward=lambda x: model(x, mode='tensor'))
        self.counter.attach()
        runner.logger.info(
            f'GMACsLossHook: {self.counter.initial_gmacs:.4f} GMACs at '
            f'{self.input_size} over {self.counter.num_layers} conv/'
            f'linear layers, {len(self.counter.pools)} DynOPool layers')
        # Each forward starts a fresh record of the DynOPool input sizes.
        self._handles = [
            model.register_forward_pre_hook(
                lambda m, args: self.counter.reset()),
            model.register_forward_hook(self._add_loss, with_kwargs=True)
        ]

    def _add_loss(self, module, args, kwargs, output):
        if kwargs.get('mode') != 'loss' or not isinstance(output, dict):
            return None
        loss = self.loss_weight * self.counter.loss()
        if self.count == 'batch':
            inputs = args[0] if args else kwargs.get('inputs')
            loss = loss * _batch_size(inputs)
        output[self.loss_name] = loss.to(next(iter(output.values())).device)
        return output

    def after_run(self, runner) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        if self.counter is not None:
            self.counter.detach()


def _batch_size(inputs) -> int:
    """Images in the model's ``inputs`` (a batched tensor, or a list of
    per-image tensors as some mmseg / mmdet paths pass)."""
    if isinstance(inputs, (list, tuple)):
        return len(inputs)
    if inputs is None or not hasattr(inputs, 'shape') or inputs.dim() < 1:
        raise TypeError('GMACsLossHook(count="batch") needs the model '
                        'inputs as a batched tensor or a list of images, '
                        f'got {type(inputs).__name__}')
    return int(inputs.shape[0])


def gmacs_loss_hooks(cfg, remove: bool = False) -> List[dict]:
    """The ``GMACsLossHook`` entries of a config's ``custom_hooks`` (the
    dicts themselves: editing one edits ``cfg``).

    The one place that knows the hook's config type: the config changes
    that concern the GMACs loss (setting lambda, dropping it for testing or
    for a fixed shape) go through it.

    Args:
        cfg (Config): A config.
        remove (bool): Also take them out of ``cfg.custom_hooks`` (in
            place). Default: False.

    Returns:
        list[dict]: The hooks, in config order.

    Example:
        >>> from mmengine.config import Config
        >>> from mmdynopool.engine import gmacs_loss_hooks
        >>> cfg = Config(dict(custom_hooks=[
        ...     dict(type='ShapeLoggingHook'),
        ...     dict(type='GMACsLossHook', loss_weight=0.1,
        ...          input_size=(32, 32))]))
        >>> [h['loss_weight'] for h in gmacs_loss_hooks(cfg)]
        [0.1]
        >>> _ = gmacs_loss_hooks(cfg, remove=True)
        >>> [h['type'] for h in cfg.custom_hooks]
        ['ShapeLoggingHook']
    """
    hooks = cfg.get('custom_hooks', None) or []
    found = [
        h for h in hooks
        if h.get('type') in (GMACsLossHook.__name__, GMACsLossHook)
    ]
    if remove and found:
        cfg.custom_hooks = [h for h in hooks if not any(
            h is f for f in found)]
    return found
