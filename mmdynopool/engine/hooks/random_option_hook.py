"""Random option fine-tuning (ROF, Untapped Potential Sec. 3.4)."""
from numbers import Integral
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...models.dynamic import (DynamicLayers, check_convert_args,
                               convert_to_dynamic)
from ...models.layers.dynamic_conv import check_attributes
from ...models.layers.shortcut import (check_follow_at_trained_stride,
                                       check_shortcut)
from ...utils.inspection import unwrap_model

__all__ = ['RandomOptionHook']


@HOOKS.register_module()
class RandomOptionHook(Hook):
    """Draw a random option permutation for every training batch.

    If the model has no dynamic layers yet, the hook makes the paper's ABCD
    layers of its backbone dynamic before training (:func:`convert_to_dynamic`:
    the parameters and state-dict keys stay, so ``load_from`` a pretrained
    checkpoint and optimizers are unaffected). Validation and testing run
    the trained configuration (or ``eval_permutation``).

    The permutation of iteration ``i`` is drawn from
    ``numpy.random.default_rng((seed, i))``: every rank of a distributed run
    draws the same one, and a resumed run continues the same sequence.

    Args:
        attributes (Sequence[str]): Dynamic attributes to randomise, from
            ``('stride', 'dilation', 'kernel_size')``. Default:
            ``('stride', )``.
        arch (str, optional): Passed to :func:`convert_to_dynamic`.
        layers (str): Passed to :func:`convert_to_dynamic`. Default:
            ``'ABCD'``.
        options (dict, optional): Passed to :func:`convert_to_dynamic`.
        seed (int): An integer >= 0. Default: 0.
        eval_permutation (Sequence, optional): Permutation for val / test.
            Default: None (the trained configuration).
        shortcut (str): Passed to :func:`convert_to_dynamic`. Default:
            ``'avgpool'``.
        follow_at_trained_stride (bool): Passed to
            :func:`convert_to_dynamic`. Default: False.

    Example:
        >>> custom_hooks = [dict(type='RandomOptionHook',
        ...                      attributes=('stride', ))]
    """

    priority = 'NORMAL'

    def __init__(self,
                 attributes: Sequence[str] = ('stride', ),
                 arch: Optional[str] = None,
                 layers: str = 'ABCD',
                 options: Optional[Dict[str, Sequence]] = None,
                 seed: int = 0,
                 eval_permutation: Optional[Sequence] = None,
                 shortcut: str = 'avgpool',
                 follow_at_trained_stride: bool = False) -> None:
        self.attributes = check_attributes(attributes)
        check_convert_args(arch, layers)
        check_shortcut(shortcut)
        check_follow_at_trained_stride(follow_at_trained_stride)
        # numpy's generator takes non-negative integers; int() would turn
        # 1.7 into 1 without a word.
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise TypeError(f'seed must be an integer >= 0, got {seed!r}')
        if seed < 0:
            raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
        self.convert_args = dict(
            arch=arch,
            layers=layers,
            options=options,
            shortcut=shortcut,
            follow_at_trained_stride=follow_at_trained_stride)
        self.seed = int(seed)
        self.eval_permutation = eval_permutation
        self.permutation = None

    def _layers(self, runner) -> DynamicLayers:
        model = unwrap_model(runner.model)
        try:
            return DynamicLayers.from_model(model)
        except ValueError:
            return convert_to_dynamic(
                getattr(model, 'backbone', model), **self.convert_args)

    def before_run(self, runner) -> None:
        self.dyn = self._layers(runner)
        self.space = self.dyn.permutations(self.attributes)
        runner.logger.info(
            f'RandomOptionHook: {len(self.space)} permutations of '
            f'{self.attributes} over layers {self.dyn.names}')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        rng = np.random.default_rng((self.seed, runner.iter))
        self.permutation = self.space[int(rng.integers(len(self.space)))]
        self.dyn.apply(self.permutation, self.attributes)

    def _eval_config(self, runner) -> None:
        self.dyn.reset()
        if self.eval_permutation is not None:
            self.dyn.apply(self.eval_permutation, self.attributes)

    def before_val_epoch(self, runner) -> None:
        self._eval_config(runner)

    def before_test_epoch(self, runner) -> None:
        self._eval_config(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self.dyn.reset()  # the model leaves testing as it was trained

    def after_train(self, runner) -> None:
        self.dyn.reset()
