"""A hook that logs the learned shapes of every resizing layer."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...models.resizing import is_learnable_resizer, resizer_scale
from ...utils.inspection import resizing_report, unwrap_model

__all__ = ['ShapeLoggingHook']


@HOOKS.register_module()
class ShapeLoggingHook(Hook):
    """Log every resizing layer's scale and the per-stage feature-map sizes.

    Every ``interval`` training iterations the scales go to the logger and,
    as scalars ``scale/<layer>/h|w`` and ``size/<layer>/h|w`` (the output
    size of every resizing layer of the backbone), to the runner's
    visualizer backends (TensorBoard when configured and installed).

    Args:
        interval (int): Iterations between logs. Default: 50.
        input_size (Sequence[int], optional): ``(H, W)`` at which to report
            every resizing layer's output size (one extra batch-1 forward of
            the backbone per log). Default: None (scales only).
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 50,
                 input_size: Optional[Sequence[int]] = None) -> None:
        if isinstance(interval,
                      bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be an integer >= 1, got '
                             f'{interval!r}')
        if input_size is not None and not (isinstance(
                input_size, (list, tuple)) and len(input_size) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1
                    for v in input_size)):
            raise ValueError('input_size must be None or (H, W) with two '
                             f'integers >= 1, got {input_size!r}')
        self.interval = interval
        self.input_size = tuple(input_size) if input_size else None

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self.log_shapes(runner, step=runner.iter + 1)

    def log_shapes(self, runner, step: int) -> dict:
        """Log every learnable resizing layer's scale and, with
        ``input_size``, its output size, to the logger and the visualizer's
        backends.

        Args:
            runner (Runner): The runner.
            step (int): The step the scalars are logged at.

        Returns:
            dict: The scalars logged (``scale/<layer>/h|w``,
            ``size/<layer>/h|w``).
        """
        model = unwrap_model(runner.model)
        scalars, parts = {}, []
        for name, m in model.named_modules():
            if not is_learnable_resizer(m):
                continue
            r_h, r_w = resizer_scale(m)
            scalars[f'scale/{name}/h'] = r_h
            scalars[f'scale/{name}/w'] = r_w
            parts.append(f'{name}=({r_h:.3f},{r_w:.3f})')
        if self.input_size is not None:
            backbone = getattr(model, 'backbone', model)
            # The same <layer> names as the scales: the model's.
            prefix = 'backbone.' if backbone is not model else ''
            # Every resizing layer's output at its first call (a shared
            # HRNet stream pool: the size of its stream), in call order.
            sizes = {}
            for row in resizing_report(backbone, self.input_size)['layers']:
                sizes.setdefault(prefix + row['name'], row['out'])
            for name, (h, w) in sizes.items():
                scalars[f'size/{name}/h'] = h
                scalars[f'size/{name}/w'] = w
            parts.append('sizes=' + ' '.join(f'{h}x{w}'
                                             for h, w in sizes.values()))
        if scalars:
            runner.logger.info('shapes: ' + ', '.join(parts))
            runner.visualizer.add_scalars(scalars, step=step)
        return scalars
