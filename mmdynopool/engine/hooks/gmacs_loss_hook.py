"""Adds ``lambda * L_GMACs`` (DynOPool paper, Eq. 7-8) to the training loss."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...analysis.complexity import GMACsCounter

__all__ = ['GMACsLossHook']


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

    Args:
        loss_weight (float): ``lambda`` of Eq. (8), e.g. 7e-5 for HRNet-W48
            on VOC.
        input_size (Sequence[int]): ``(H, W)`` of the training crop, the
            reference for the initial GMACs.
        in_channels (int): Input channels. Default: 3.
        loss_name (str): Key in the loss dict. Default: ``'loss_gmacs'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 loss_weight: float,
                 input_size: Sequence[int],
                 in_channels: int = 3,
                 loss_name: str = 'loss_gmacs') -> None:
        if not loss_weight >= 0:
            raise ValueError(f'loss_weight (lambda) must be >= 0, got '
                             f'{loss_weight!r}')
        if len(input_size) != 2 or min(input_size) < 1:
            raise ValueError(f'input_size must be (H, W), got {input_size!r}')
        if 'loss' not in loss_name:
            raise ValueError("loss_name must contain 'loss' so that mmengine "
                             f'adds it to the total loss, got {loss_name!r}')
        self.loss_weight = float(loss_weight)
        self.input_size = tuple(input_size)
        self.in_channels = in_channels
        self.loss_name = loss_name
        self.counter: Optional[GMACsCounter] = None
        self._handles = []

    def before_run(self, runner) -> None:
        if self.loss_weight == 0:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self.counter = GMACsCounter(
            model,
            self.input_size,
            self.in_channels,
            forward=lambda x: model(x, mode='tensor'))
        self.counter.attach()
        runner.logger.info(
            f'GMACsLossHook: {self.counter.initial_gmacs:.4f} GMACs at '
            f'{self.input_size} over {len(self.counter.layer_gmacs)} conv/'
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
        output[self.loss_name] = self.loss_weight * self.counter.loss().to(
            next(iter(output.values())).device)
        return output

    def after_run(self, runner) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        if self.counter is not None:
            self.counter.detach()
