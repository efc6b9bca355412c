import os.path as osp

import pytest
import torch
from hypothesis import settings
from mmengine.config import Config

# Property tests draw the same examples on every run, so CI cannot flake on
# a rare draw; explore new ones locally with --hypothesis-profile=explore.
settings.register_profile('repro', derandomize=True, deadline=None)
settings.register_profile('explore', deadline=None, max_examples=200)
settings.load_profile('repro')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(
    ROOT, 'configs', 'demo',
    'fcn_hr16-slim_dynopool_1xb8-600iter_digits-voc-96x96.py')


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """A small digit-mosaic data set, generated once per test session."""
    from mmdynopool.datasets import build_digits_voc
    root = str(tmp_path_factory.mktemp('data') / 'digits_voc')
    return build_digits_voc(root, num_train=24, num_val=4)


@pytest.fixture
def demo_cfg(digits_root):
    """``demo_cfg(work_dir, iters=4, gmacs=0.1)``: the demo config,
    shortened to a few iterations on the small data set."""

    def make(work_dir, iters=4, gmacs=0.1):
        return tiny_demo_config(digits_root, work_dir, iters, gmacs)

    return make


def tiny_demo_config(data_root, work_dir, iters=4, gmacs=0.1):
    cfg = Config.fromfile(DEMO_CONFIG)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = 2
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler[0].end = iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.custom_hooks = [
        dict(type='GMACsLossHook', loss_weight=gmacs, input_size=(96, 96)),
        dict(type='ShapeLoggingHook', interval=2, input_size=(96, 96)),
    ]
    cfg.log_level = 'WARNING'
    return cfg


@pytest.fixture
def tiny_classifier_cfg():
    """An mmpretrain classifier small enough for brute-force checks: a CIFAR
    ResNet-18 at 4-8-16-32 channels for the 10 digit classes (inputs as
    ``ToyDigits`` gives them)."""
    return dict(
        type='ImageClassifier',
        data_preprocessor=dict(
            num_classes=10, mean=[33.3] * 3, std=[78.6] * 3),
        backbone=dict(
            type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=32))


@pytest.fixture(autouse=True)
def isolated_default_scope():
    """Runners and configs set mmengine's global default scope; restore it
    after every test so registry look-ups do not depend on test order."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


# Devices and dtypes of the layer tests. A CUDA case carries a skipif mark,
# so on a machine without CUDA it is reported as skipped before any fixture
# runs (it costs nothing there) and runs unchanged where CUDA is present.
requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA device')


@pytest.fixture(params=[
    pytest.param('cpu', id='cpu'),
    pytest.param('cuda', id='cuda', marks=requires_cuda)
])
def device(request):
    """``torch.device('cpu')``, then ``'cuda'`` (skipped without CUDA)."""
    return torch.device(request.param)


@pytest.fixture(params=[
    pytest.param(torch.float32, id='float32'),
    pytest.param(torch.float64, id='float64')
])
def dtype(request):
    """The floating dtype of a layer's parameters and inputs."""
    return request.param


@pytest.fixture(params=[
    pytest.param(torch.float16, id='float16', marks=requires_cuda),
    pytest.param(torch.bfloat16, id='bfloat16', marks=requires_cuda)
])
def autocast_dtype(request):
    """A half-precision dtype for ``torch.autocast('cuda', dtype=...)``.

    CUDA only (skipped without): the CPU's bfloat16 autocast is tested on
    its own where a layer promises it."""
    return request.param


class LayerCase:
    """One ``(device, dtype)`` case of a layer test against its reference.

    The reference (a naive implementation of the paper's equations, or plain
    torch ops) always runs on the CPU: in the case's dtype for a CPU case,
    so the rounding and the tolerances stay those of a same-precision test,
    and in float64 for a CUDA case, the ground truth, which float32 results
    meet to ``rtol = atol = 1e-5``.

    Args:
        device (torch.device): Where the layer runs.
        dtype (torch.dtype): The layer's dtype.
    """

    #: Tolerance of a float32 result against the float64 reference.
    FP32_TOLERANCE = dict(rtol=1e-5, atol=1e-5)

    def __init__(self, device, dtype):
        self.device = torch.device(device)
        self.dtype = dtype
        self.ref_dtype = dtype if self.device.type == 'cpu' else \
            torch.float64

    def __repr__(self):
        return f'LayerCase({self.device}, {self.dtype})'

    def to(self, obj):
        """A tensor or module moved to the layer's device and dtype."""
        return obj.to(device=self.device, dtype=self.dtype)

    def ref(self, obj):
        """A tensor or module moved to the reference's (CPU) dtype."""
        return obj.to(device='cpu', dtype=self.ref_dtype)

    def assert_close(self, actual, expected, **tolerance):
        """``actual`` (the layer's) against ``expected`` (the reference's);
        explicit tolerances apply to every case."""
        if not tolerance and actual.dtype != expected.dtype:
            tolerance = self.FP32_TOLERANCE
        torch.testing.assert_close(actual.detach().to('cpu', expected.dtype),
                                   expected.detach(), **tolerance)


@pytest.fixture
def layer_case(device, dtype):
    """A :class:`LayerCase` for every device and dtype."""
    return LayerCase(device, dtype)


@pytest.fixture
def count_host_reads():
    """Context manager listing every read of a tensor's value on the host
    (``tolist``, ``item``, ``bool()`` ...) made from Python, forward and
    backward alike (the Tensor methods themselves are wrapped)."""
    import contextlib
    names = ('tolist', 'item', '__bool__', '__int__', '__float__', '__index__',
             'numpy')

    @contextlib.contextmanager
    def counting():
        seen = []
        saved = {n: getattr(torch.Tensor, n) for n in names}

        def wrap(name, f):

            def method(self, *args, **kwargs):
                seen.append(name)
                return f(self, *args, **kwargs)

            return method

        for n, f in saved.items():
            setattr(torch.Tensor, n, wrap(n, f))
        try:
            yield seen
        finally:
            for n, f in saved.items():
                setattr(torch.Tensor, n, f)

    return counting
