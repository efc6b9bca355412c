"""ShapeLoggingHook (mmdynopool/engine/hooks/shape_hooks.py)."""
import pytest
import torch


def test_shape_logging_hook_writes_to_logger_and_visualizer():
    from types import SimpleNamespace

    from mmdynopool.engine.hooks import ShapeLoggingHook
    from mmdynopool.models import DynOPoolResNet_CIFAR

    class Recorder:

        def __init__(self):
            self.calls, self.lines = [], []

        def add_scalars(self, scalars, step):
            self.calls.append((scalars, step))

        def info(self, line):
            self.lines.append(line)

    model = torch.nn.Module()
    model.backbone = DynOPoolResNet_CIFAR(18, init_scales=[0.6, 0.5, 0.5],
                                          out_indices=(0, 1, 2, 3))
    rec = Recorder()
    runner = SimpleNamespace(model=model, iter=9, visualizer=rec, logger=rec)
    hook = ShapeLoggingHook(interval=5, input_size=(32, 32))
    hook.after_train_iter(runner, 9)
    scalars, step = rec.calls[0]
    assert step == 10
    assert scalars['scale/backbone.dynopools.0/h'] == pytest.approx(0.6)
    # One size per resizing layer (hand count: 32*0.6 = 19.2 -> 19, then
    # halves rounded up), not only the backbone's returned maps.
    assert (scalars['size/dynopools.0/h'],
            scalars['size/dynopools.0/w']) == (19, 19)
    assert scalars['size/dynopools.2/h'] == 5
    assert 'sizes=19x19 10x10 5x5' in rec.lines[0]
    # A classifier backbone returning only its last map logs every layer.
    model.backbone = DynOPoolResNet_CIFAR(18, init_scales=[0.6, 0.5, 0.5])
    hook.after_train_iter(runner, 9)
    assert sum(k.startswith('size/') for k in rec.calls[-1][0]) == 6
    rec.calls, rec.lines = rec.calls[:1], rec.lines[:1]
    runner.iter = 10
    hook.after_train_iter(runner, 10)  # not a multiple of the interval
    assert len(rec.calls) == 1


def test_shape_logging_hook_to_tensorboard(tmp_path):
    """The shapes reach TensorBoard (the `tensorboard` extra), read back
    with TensorBoard's own event reader."""
    from types import SimpleNamespace

    from mmengine.visualization import Visualizer
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator

    from mmdynopool.engine.hooks import ShapeLoggingHook
    from mmdynopool.models import DynOPoolVGG

    model = torch.nn.Module()
    model.backbone = DynOPoolVGG(11, init_scales=0.6, out_indices=(4, ))
    vis = Visualizer(name='tb_test', save_dir=str(tmp_path),
                     vis_backends=[dict(type='TensorboardVisBackend')])
    runner = SimpleNamespace(model=model, iter=0, visualizer=vis,
                             logger=SimpleNamespace(info=lambda line: None))
    ShapeLoggingHook(interval=1, input_size=(32, 32)).after_train_iter(
        runner, 0)
    vis.close()
    events = EventAccumulator(str(tmp_path / 'vis_data'))
    events.Reload()
    tags = events.Tags()['scalars']
    # 32 * 0.6 = 19.2 -> 19 after the first pool (hand count).
    first = next(t for t in tags if t.startswith('size/') and t.endswith('/h'))
    assert events.Scalars(first)[0].value == 19
    assert sum(t.startswith('scale/') for t in tags) == 2 * 5
