"""Adds ``lambda * L_GMACs`` (DynOPool paper, Eq. 7-8) to the training loss,
with a fixed lambda (the paper) or one that steers to a GMACs target."""
import math
from numbers import Integral, Real
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...utils.inspection import unwrap_model
from ..cost_target import GMACsTarget
from ..gmacs import GMACsCounter

__all__ = [
    'GMACsLossHook', 'gmacs_loss_hooks', 'gmacs_loss_hook',
    'set_gmacs_loss_weight'
]

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
    counts one image. Only ``'batch'`` lets the paper's lambdas act as they
    do in the paper: the argument is in ``docs/conventions.md`` ("What
    GMACs[l] counts").

    **Cost target** (``target_gmacs``, beyond the paper). With a target ``X``
    (GMACs of one image at ``input_size``) lambda starts at ``loss_weight`` and
    adapts every step, ``lambda_t = loss_weight * m_t * (C_t / X) ** p_gain``,
    ``m_{t+1} = m_t (C_t / X) ** gain``; at ``settle`` of the schedule the
    sizes are settled within ``target_tolerance`` of ``X`` and the alphas
    frozen for the rest of the run (:mod:`mmdynopool.engine.cost_target`; the
    design's reasoning is in ``docs/conventions.md``). The run then ends at
    ``X`` whatever the seed, with no lambda sweep. Every ``log_interval`` steps
    (default: the LoggerHook's) it logs ``train/gmacs``, ``train/gmacs_gap``
    (``C_t / X - 1``) and ``train/gmacs_lambda``; the multiplier and the
    settled state go into checkpoints, so a resumed run continues exactly.
    Configs that reproduce a paper number keep ``target_gmacs=None``.

    Args:
        loss_weight (float): ``lambda`` of Eq. (8), e.g. 7e-5 for HRNet-W48
            on VOC.
        input_size (Sequence[int]): ``(H, W)`` of the training crop, the
            reference for the initial GMACs.
        in_channels (int): Input channels. Default: 3.
        count (str): What ``GMACs[l]`` counts: ``'batch'`` (the per-process
            training batch) or ``'image'``. Default: ``'batch'``.
        loss_name (str): Key in the loss dict. Default: ``'loss_gmacs'``.
        target_gmacs (float, optional): GMACs per image at ``input_size`` to
            end at; None keeps lambda fixed (the paper). Default: None.
        settle (float): Fraction of the run after which the sizes are
            settled on the target and frozen (target mode). Default: 0.8.
        gain (float): Exponent of lambda's update, integral part (target
            mode). Default: 0.02.
        p_gain (float): Exponent of lambda's proportional factor (target
            mode). Default: 4.
        target_tolerance (float): Relative band of the settle (target
            mode). Default: 0.02.
        log_interval (int, optional): Steps between target-mode log
            entries. Default: the LoggerHook's interval.

    Example:
        >>> custom_hooks = [dict(type='GMACsLossHook', loss_weight=7e-5,
        ...                      input_size=(480, 480), target_gmacs=60.0)]
    """

    priority = 'NORMAL'

    def __init__(self,
                 loss_weight: float,
                 input_size: Sequence[int],
                 in_channels: int = 3,
                 count: str = 'batch',
                 loss_name: str = 'loss_gmacs',
                 target_gmacs: Optional[float] = None,
                 settle: float = 0.8,
                 gain: float = 0.02,
                 p_gain: float = 4.0,
                 target_tolerance: float = 0.02,
                 log_interval: Optional[int] = None) -> None:
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, Real):
            raise TypeError('loss_weight (lambda) must be a real number, got '
                            f'{loss_weight!r}')
        if not (math.isfinite(loss_weight) and loss_weight >= 0):
            raise ValueError('loss_weight (lambda) must be finite and >= 0, '
                             f'got {loss_weight!r}')
        if not (isinstance(input_size, Sequence) and len(input_size) == 2
                and all(
                    isinstance(v, Integral) and not isinstance(v, bool)
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
        if target_gmacs is not None:
            if isinstance(target_gmacs, bool) or not isinstance(
                    target_gmacs, Real) or not (math.isfinite(target_gmacs)
                                                and target_gmacs > 0):
                raise ValueError('target_gmacs must be None or a number > 0 '
                                 f'(GMACs per image), got {target_gmacs!r}')
            if loss_weight == 0:
                raise ValueError('target_gmacs needs loss_weight > 0: the '
                                 'adaptive lambda starts there, got 0')
            for name, v, hi in (('settle', settle, 1), ('gain', gain, 1),
                                ('target_tolerance', target_tolerance, 0.5)):
                if isinstance(
                        v,
                        bool) or not isinstance(v, Real) or not (0 < v <= hi):
                    raise ValueError(f'{name} must be a number in (0, {hi}],'
                                     f' got {v!r}')
        if isinstance(p_gain, bool) or not isinstance(
                p_gain, Real) or not (0 <= p_gain <= 16):
            raise ValueError(f'p_gain must be a number in [0, 16], got '
                             f'{p_gain!r}')
        if log_interval is not None and (isinstance(log_interval, bool)
                                         or not isinstance(log_interval, int)
                                         or log_interval < 1):
            raise ValueError('log_interval must be None or an integer >= 1, '
                             f'got {log_interval!r}')
        self.target_gmacs = None if target_gmacs is None else float(
            target_gmacs)
        self.settle, self.gain = float(settle), float(gain)
        self.p_gain = p_gain
        self.target_tolerance = float(target_tolerance)
        self.log_interval = log_interval
        self.target: Optional[GMACsTarget] = None
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
        max_iters = getattr(runner.train_loop, 'max_iters', None) if \
            not isinstance(runner._train_loop, (dict, type(None))) else None
        if self.target_gmacs is not None and max_iters is not None:
            self.target = GMACsTarget(self.counter, self.target_gmacs,
                                      self.loss_weight, max_iters, self.settle,
                                      self.gain, self.p_gain,
                                      self.target_tolerance)
            runner.logger.info(
                f'GMACsLossHook: target {self.target_gmacs:g} GMACs, lambda '
                f'adapts from {self.loss_weight:g}, sizes settle after '
                f'iteration {self.target.settle_iter}')
        # Each forward starts a fresh record of the DynOPool input sizes.
        self._handles = [
            model.register_forward_pre_hook(
                lambda m, args: self.counter.reset()),
            model.register_forward_hook(self._add_loss, with_kwargs=True)
        ]

    def _add_loss(self, module, args, kwargs, output):
        if kwargs.get('mode') != 'loss' or not isinstance(output, dict):
            return None
        if self.target is not None:
            loss = self.target.loss()
        else:
            loss = self.loss_weight * self.counter.loss()
        if self.count == 'batch':
            inputs = args[0] if args else kwargs.get('inputs')
            loss = loss * _batch_size(inputs)
        # (mmdet's loss dicts hold lists per level: the device is the
        # model's, where the alphas and so the loss already are.)
        output[self.loss_name] = loss
        return output

    def before_train(self, runner) -> None:
        if self.target is not None and self.log_interval is None:
            from mmengine.hooks import LoggerHook
            self.log_interval = next(
                (h.interval
                 for h in runner.hooks if isinstance(h, LoggerHook)), 50)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self.target is None:
            return
        gap, lam = self.target.gap(), self.target.weight()
        settled = self.target.step(runner.iter + 1)
        if settled is not None:
            runner.logger.info(
                f'GMACsLossHook: sizes settled at iteration {runner.iter + 1}'
                f': {settled["gmacs_before"]:.5g} -> {settled["gmacs"]:.5g} '
                f'GMACs ({100 * settled["gap"]:+.2f} % of the target), '
                f'alphas x {math.exp(settled["shift"]):.4f}, now fixed')
        if gap is not None and self.every_n_train_iters(
                runner, self.log_interval):
            hub = runner.message_hub
            hub.update_scalar('train/gmacs',
                              self.target_gmacs * (1 + float(gap)))
            hub.update_scalar('train/gmacs_gap', float(gap))
            hub.update_scalar('train/gmacs_lambda', float(lam))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.target is not None:
            checkpoint['gmacs_target'] = self.target.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.target is not None and 'gmacs_target' in checkpoint:
            self.target.load_state_dict(checkpoint['gmacs_target'])

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
        cfg.custom_hooks = [h for h in hooks if not any(h is f for f in found)]
    return found


def gmacs_loss_hook(cfg) -> dict:
    """The one ``GMACsLossHook`` dict of ``cfg.custom_hooks`` (editing it
    edits ``cfg``).

    Args:
        cfg (Config): A DynOPool config.

    Returns:
        dict: The hook's config dict.

    Raises:
        ValueError: If ``cfg`` has no ``GMACsLossHook`` or several.

    Example:
        >>> from mmengine.config import Config
        >>> from mmdynopool.engine import gmacs_loss_hook
        >>> cfg = Config(dict(custom_hooks=[dict(
        ...     type='GMACsLossHook', loss_weight=0.1, input_size=(32, 32))]))
        >>> gmacs_loss_hook(cfg)['input_size']
        (32, 32)
    """
    hooks = gmacs_loss_hooks(cfg)
    if len(hooks) != 1:
        raise ValueError('the DynOPool config must have exactly one '
                         f'GMACsLossHook in custom_hooks, found {len(hooks)}')
    return hooks[0]


def set_gmacs_loss_weight(cfg, loss_weight: float):
    """A copy of ``cfg`` whose ``GMACsLossHook`` has ``loss_weight``.

    Args:
        cfg (Config): A DynOPool config with one ``GMACsLossHook``; not
            modified.
        loss_weight (float): lambda, >= 0.

    Returns:
        Config: The changed copy.
    """
    import copy
    if not loss_weight >= 0:
        raise ValueError(f'lambda (GMACsLossHook loss_weight) must be >= 0, '
                         f'got {loss_weight!r}')
    cfg = copy.deepcopy(cfg)
    gmacs_loss_hook(cfg)['loss_weight'] = float(loss_weight)
    return cfg
