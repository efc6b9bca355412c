"""The tiny runner-level pieces the hook tests share: a seeded
``conv -> DynOPool2d -> conv`` model and fixed one-channel images, both
registered for a test's duration by :func:`register`."""
import torch
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from mmdynopool.models import DynOPool2d


class ConvPoolConv(BaseModel):
    """``conv(1 -> mid) -> DynOPool2d(init_scale) -> conv(mid -> out)``, 3x3
    with padding 1; weights drawn from ``seed`` when given (the same in every
    run), else from the global generator. Loss: the output's mean square."""

    def __init__(self, mid=4, out=2, init_scale=0.5, seed=None):
        super().__init__()
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.conv1 = nn.Conv2d(1, mid, 3, padding=1)
            self.pool = DynOPool2d(init_scale=init_scale)
            self.conv2 = nn.Conv2d(mid, out, 3, padding=1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.conv2(self.pool(self.conv1(x)))
        if mode == 'loss':
            return dict(loss=out.square().mean())
        return out


class FixedImages(TorchDataset):
    """``num`` fixed ``1 x size x size`` images (image i from seed i)."""
    metainfo = dict()

    def __init__(self, num=4, size=8):
        self.num, self.size = num, size

    def __len__(self):
        return self.num

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(1, self.size, self.size, generator=g))


def register():
    MODELS.register_module(module=ConvPoolConv, force=True)
    DATASETS.register_module(module=FixedImages, force=True)


def unregister():
    MODELS.module_dict.pop('ConvPoolConv', None)
    DATASETS.module_dict.pop('FixedImages', None)


def train_only(cfg, model: dict, dataset: dict, batch_size: int) -> None:
    """Make a ``RunnerTestCase`` config train ``model`` on ``dataset`` in
    order, ``batch_size`` a batch, with no validation or test loop, seed 0
    and quiet logs (the caller sets ``train_cfg``)."""
    cfg.model = model
    cfg.train_dataloader.dataset = dataset
    cfg.train_dataloader.sampler.shuffle = False
    cfg.train_dataloader.batch_size = batch_size
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
