"""Shape Adaptor's optimisation schedule (Shape Adaptor paper, Algorithm 1)."""
import copy
import math
from numbers import Integral, Real
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.registry import HOOKS, OPTIMIZERS, PARAM_SCHEDULERS, Registry
from mmengine.runner import IterBasedTrainLoop

from ...models.layers import ShapeAdaptor, set_shape_adaptor_penalty
from ...utils.inspection import unwrap_model

__all__ = ['ShapeAdaptorHook']

#: The authors' alpha optimizer (lorenmt/shape-adaptor, every data set).
AUTHORS_ALPHA_OPTIMIZER = dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True)
#: Checkpoint key of the hook's own optimizer and scheduler states.
STATE_KEY = 'shape_adaptor_hook'
#: When the memory penalty is computed (see ``ShapeAdaptorHook``).
PENALTY_TIMINGS = ('authors', 'current')


def _check_registered(name: str, cfg: dict, registry: Registry,
                      what: str) -> None:
    """``cfg['type']`` names something ``registry`` builds (a misspelt
    optimizer used to fail in ``before_run`` with "None is not a callable
    object")."""
    kind = cfg['type']
    if callable(kind):
        return
    with registry.switch_scope_and_registry(None) as reg:
        found = isinstance(kind, str) and reg.get(kind) is not None
    if not found:
        raise ValueError(f'{name} type {kind!r} is not a registered {what} '
                         f"(mmengine's {registry.name!r} registry in the "
                         "current scope, e.g. 'SGD' / 'CosineAnnealingLR')")


@HOOKS.register_module()
class ShapeAdaptorHook(Hook):
    """Shape Adaptor's schedule: alpha steps every ``alpha_interval`` batches.

    **Separate pass** (``alpha_optimizer`` a dict, the default and the
    authors' code). Before the weight step of every batch whose index
    *within the epoch* is a multiple of ``alpha_interval`` (batch 0, 20,
    40, ... for ``alpha_interval=20``), the hook runs the model's loss on
    that batch, takes the gradient with respect to the adaptors' alphas only
    (averaged over processes) and steps its own optimizer, by default the
    authors' SGD (lr 0.1, momentum 0.9, Nesterov) under a cosine annealing
    of its learning rate over the whole run (``alpha_scheduler``). The
    weights then take the runner's usual step with the *new* alphas
    (Algorithm 1, lines 14-17). The runner's optimizer never moves alpha:
    alpha does not require a gradient during the weight pass, so keep it in
    ``paramwise_cfg`` or not, it gets no update there. Batch-norm layers see
    the alpha batch twice in training mode, as in the authors' code. The
    hook's optimizer and scheduler states travel in the checkpoint (key
    ``'shape_adaptor_hook'``), so a resumed run continues exactly.

    **Joint step** (``alpha_optimizer=None``). alpha stays in the runner's
    optimizer (``paramwise_cfg`` sets its learning rate) and gets a gradient
    only on those batches, from the same pass as the weights.

    Under DDP, both need ``find_unused_parameters=True`` in
    ``model_wrapper_cfg`` (alpha has no gradient in most weight passes).
    An alpha that needs no gradient when the run starts (frozen with its
    stage by ``frozen_stages``) is never trained; fixed adaptors (``Fix
    (Final)``) keep their alpha and penalty.

    **Memory limit.** With ``d_limit``, the penalty ``rho`` (Eq. 6-8) is
    ``rho = (d_limit / D_cout) ** (1 / N)`` when the unpenalised final
    dimension ``D_cout = input_size * prod s(a_i)`` exceeds ``d_limit``,
    else 1. When (``penalty_timing``): ``'authors'`` (their code, the
    default) takes ``D_cout`` of the previous forward pass, so both passes
    of an alpha iteration use the rho of the alphas *before* the step, and
    rho is 1 throughout the run's first iteration (no previous pass);
    ``'current'`` recomputes it from the alphas of each pass (the weights
    see the stepped alphas' rho). Without a limit the two are the same.
    Validation and testing use the rho of the current alphas (as the
    authors' ``model_training.py`` does; their ImageNet script keeps the
    last training pass's, which differs only after an epoch ending in an
    alpha step), and so does a resumed run's first iteration. The authors
    run ImageNet with ``d_limit=15``, fine-grained 224 px data with 30 and
    small images with none.

    Args:
        alpha_interval (int): Update alpha every this many batches (20 for
            small data sets, 1500 for ImageNet in the paper). Default: 20.
        input_size (int, optional): ``D_in``, needed with ``d_limit``.
        d_limit (float, optional): ``D_limit``. Default: None (no limit).
        alpha_optimizer (dict, optional): The optimizer of the separate alpha
            pass (an ``optim_wrapper`` ``optimizer`` dict), or None for the
            joint step. Default: the authors' Nesterov SGD, lr 0.1.
        alpha_scheduler (dict, optional): An mmengine parameter scheduler
            for ``alpha_optimizer``, stepped every epoch (``by_epoch``
            loops) or iteration; ``T_max`` defaults to the run's length.
            Default: ``dict(type='CosineAnnealingLR')`` (the authors').
            None keeps the learning rate constant.
        penalty_timing (str): ``'authors'`` or ``'current'``, see
            **Memory limit**. Default: ``'authors'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 alpha_interval: int = 20,
                 input_size: Optional[int] = None,
                 d_limit: Optional[float] = None,
                 alpha_optimizer: Optional[dict] = AUTHORS_ALPHA_OPTIMIZER,
                 alpha_scheduler: Optional[dict] = dict(
                     type='CosineAnnealingLR'),
                 penalty_timing: str = 'authors') -> None:
        if isinstance(alpha_interval, bool) or not isinstance(
                alpha_interval, Integral) or alpha_interval < 1:
            raise ValueError('alpha_interval must be an integer >= 1, got '
                             f'{alpha_interval!r}')
        if d_limit is not None and not (isinstance(
                d_limit, Real) and math.isfinite(d_limit) and d_limit > 0
                                        and isinstance(input_size, Real)
                                        and input_size > 0):
            raise ValueError('d_limit needs input_size and both must be > 0, '
                             f'got input_size={input_size!r}, '
                             f'd_limit={d_limit!r}')
        for name, value in (('alpha_optimizer', alpha_optimizer),
                            ('alpha_scheduler', alpha_scheduler)):
            if value is not None and not (isinstance(value, dict)
                                          and 'type' in value):
                raise TypeError(f'{name} must be None or a config dict with '
                                f'a type, got {value!r}')
        if alpha_optimizer is not None:
            _check_registered('alpha_optimizer', alpha_optimizer, OPTIMIZERS,
                              'optimizer')
            if alpha_scheduler is not None:
                _check_registered('alpha_scheduler', alpha_scheduler,
                                  PARAM_SCHEDULERS, 'parameter scheduler')
        if penalty_timing not in PENALTY_TIMINGS:
            raise ValueError(f'penalty_timing must be one of '
                             f'{PENALTY_TIMINGS}, got {penalty_timing!r}')
        self.penalty_timing = penalty_timing
        if alpha_optimizer is None and alpha_scheduler is not None \
                and alpha_scheduler != dict(type='CosineAnnealingLR'):
            raise ValueError('alpha_scheduler needs alpha_optimizer (the '
                             'joint step uses the runner\'s schedulers), got '
                             f'{alpha_scheduler!r}')
        self.alpha_interval = int(alpha_interval)
        self.input_size = input_size
        self.d_limit = d_limit
        self.alpha_optimizer_cfg = copy.deepcopy(alpha_optimizer)
        self.alpha_scheduler_cfg = copy.deepcopy(alpha_scheduler) \
            if alpha_optimizer is not None else None
        self.optim_wrapper = None
        self.scheduler = None
        self._by_epoch = True
        self._adaptors: List[ShapeAdaptor] = []
        self._trainable: List[ShapeAdaptor] = []

    # ---------------------------------------------------------------- set-up
    def before_run(self, runner) -> None:
        # Once per run: fixed adaptors ("Fix (Final)") keep their alpha and
        # penalty; an alpha that needs no gradient now (frozen with its
        # stage by `frozen_stages`) is never trained.
        self._adaptors = [
            m for m in unwrap_model(runner.model).modules()
            if isinstance(m, ShapeAdaptor) and not m.fixed
        ]
        self._trainable = [
            sa for sa in self._adaptors if sa.alpha.requires_grad
        ]
        loop = getattr(runner, '_train_loop', None)
        if self.alpha_optimizer_cfg is None or loop is None or isinstance(
                loop, dict):  # the joint step, or not a training run
            return
        alphas = [sa.alpha for sa in self._trainable]
        if not alphas:
            return
        self.optim_wrapper = build_optim_wrapper(
            torch.nn.ParameterList(alphas),
            dict(optimizer=copy.deepcopy(self.alpha_optimizer_cfg)))
        if self.alpha_scheduler_cfg is not None:
            cfg = dict(self.alpha_scheduler_cfg)
            # IterBasedTrainLoop has max_epochs too (1): ask its type.
            cfg.setdefault('by_epoch',
                           not isinstance(loop, IterBasedTrainLoop))
            self._by_epoch = bool(cfg['by_epoch'])
            if cfg['type'] == 'CosineAnnealingLR' and 'T_max' not in cfg:
                cfg['T_max'] = loop.max_epochs if self._by_epoch else \
                    loop.max_iters
            self.scheduler = PARAM_SCHEDULERS.build(
                cfg, default_args=dict(optimizer=self.optim_wrapper))

    # --------------------------------------------------------------- training
    def _set_penalty(self) -> None:
        set_shape_adaptor_penalty(self._adaptors, self.input_size,
                                  self.d_limit)

    # Validation and testing see the penalised shape training ended with
    # (it is not in the state dict: recomputed from the alphas).
    def before_val_epoch(self, runner) -> None:
        self._set_penalty()

    def before_test_epoch(self, runner) -> None:
        self._set_penalty()

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        if not self._adaptors:
            return
        update = batch_idx % self.alpha_interval == 0
        if self.penalty_timing == 'authors' and runner.iter == 0 and \
                self.d_limit is not None:
            for sa in self._adaptors:  # no previous pass to measure yet
                sa.penalty = 1.0
        else:  # the current alphas: those of the previous pass too
            self._set_penalty()
        if self.optim_wrapper is None:  # joint step
            for sa in self._trainable:
                sa.alpha.requires_grad_(update)
            return
        if update and self._trainable:
            self._alpha_step(runner, data_batch)
            if self.penalty_timing == 'current':
                self._set_penalty()  # the weights see the new alphas' rho
        for sa in self._trainable:
            sa.alpha.requires_grad_(False)

    def _alpha_step(self, runner, data_batch) -> None:
        model = unwrap_model(runner.model)
        alphas = [sa.alpha for sa in self._trainable]
        for a in alphas:
            a.requires_grad_(True)
        data = model.data_preprocessor(data_batch, True)
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        grads = torch.autograd.grad(loss, alphas, allow_unused=True)
        for a, g in zip(alphas, grads):
            g = torch.zeros_like(a) if g is None else g
            all_reduce(g, op='mean')
            a.grad = g
        self.optim_wrapper.step()
        self.optim_wrapper.zero_grad()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self.scheduler is not None and not self._by_epoch:
            self.scheduler.step()

    def after_train_epoch(self, runner) -> None:
        if self.scheduler is not None and self._by_epoch:
            self.scheduler.step()

    def after_train(self, runner) -> None:
        for sa in self._trainable:
            sa.alpha.requires_grad_(True)

    # ----------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint: Dict) -> None:
        if self.optim_wrapper is None:
            return
        checkpoint[STATE_KEY] = dict(
            optimizer=self.optim_wrapper.state_dict(),
            scheduler=self.scheduler.state_dict()
            if self.scheduler is not None else None)

    def after_load_checkpoint(self, runner, checkpoint: Dict) -> None:
        # Only a resumed run continues the hook's state (like the runner's
        # own optimizer); load_from starts it afresh.
        state = checkpoint.get(STATE_KEY)
        if self.optim_wrapper is None or state is None or not getattr(
                runner, '_resume', False):
            return
        self.optim_wrapper.load_state_dict(state['optimizer'])
        if self.scheduler is not None and state['scheduler'] is not None:
            self.scheduler.load_state_dict(state['scheduler'])
