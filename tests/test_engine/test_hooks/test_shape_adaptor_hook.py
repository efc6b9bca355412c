"""ShapeAdaptorHook against Shape Adaptor's Algorithm 1 written out by hand
(the authors' loop: alpha in its own pass at batch index % interval == 0,
Nesterov SGD, cosine per epoch; then the weights with the new alpha)."""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import Runner
from mmengine.testing import RunnerTestCase
from torch import nn
from torch.utils.data import Dataset

from mmdynopool.engine.hooks import ShapeAdaptorHook
from mmdynopool.models import ShapeAdaptor
from mmdynopool.utils import allow_mmengine_checkpoints

INTERVAL, EPOCHS, BATCH, SAMPLES = 3, 2, 2, 10  # 5 batches an epoch


class Tiny(BaseModel):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.sa1 = ShapeAdaptor(init_alpha=0.3)
        self.sa2 = ShapeAdaptor(init_alpha=-0.2)
        self.fc = nn.Linear(4, 3)

    def forward(self, inputs, labels=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.fc(self.sa2(self.sa1(F.relu(self.conv(x)))).mean((2, 3)))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(out, torch.as_tensor(labels)))
        return out


def dataset():
    g = torch.Generator().manual_seed(0)
    return [
        dict(inputs=torch.randn(1, 13, 11, generator=g), labels=i % 3)
        for i in range(SAMPLES)
    ]


def batches():
    data = dataset()
    return [(torch.stack([d['inputs'] for d in data[i:i + BATCH]]),
             torch.tensor([d['labels'] for d in data[i:i + BATCH]]))
            for i in range(0, SAMPLES, BATCH)]


def loss_of(model, x, y):
    return F.cross_entropy(model(x), y)


def algorithm1(model, joint=False, d_limit=None, timing='authors'):
    """The reference: Shape Adaptor's Algorithm 1 as the authors run it.

    With a memory limit, ``timing='authors'`` is their code's: rho comes
    from the previous forward pass's alphas (so after an alpha step the
    weights still see the old alphas' rho) and is 1 in the run's very first
    iteration; ``'current'`` recomputes it from the alphas of the pass."""
    alphas = [model.sa1.alpha, model.sa2.alpha]
    weights = [p for n, p in model.named_parameters() if 'alpha' not in n]
    w_opt = torch.optim.SGD(weights, lr=0.05, momentum=0.9)
    if joint:  # alpha in the weights' optimizer, lr 0.01 for it
        w_opt.add_param_group(dict(params=alphas, lr=0.01))
    else:
        a_opt = torch.optim.SGD(alphas, lr=0.1, momentum=0.9, nesterov=True)
    for epoch in range(EPOCHS):
        if not joint:  # cosine annealing per epoch over the run
            for g in a_opt.param_groups:
                g['lr'] = 0.1 * (1 + math.cos(math.pi * epoch / EPOCHS)) / 2
        for i, (x, y) in enumerate(batches()):
            update = i % INTERVAL == 0
            first = epoch == 0 and i == 0
            if d_limit is not None:
                if timing == 'authors' and first:
                    model.sa1.penalty = model.sa2.penalty = 1.0
                else:  # the alphas of the previous forward: unchanged
                    penalise(model, d_limit)
            if update and not joint:
                grads = torch.autograd.grad(loss_of(model, x, y), alphas)
                for a, g in zip(alphas, grads):
                    a.grad = g
                a_opt.step()
                a_opt.zero_grad()
                if d_limit is not None and timing == 'current':
                    penalise(model, d_limit)
            for a in alphas:
                a.requires_grad_(joint and update)
            loss_of(model, x, y).backward()
            w_opt.step()
            w_opt.zero_grad()
            for a in alphas:
                a.requires_grad_(True)
    return model


def penalise(model, d_limit):
    # Eq. 8: rho = (D_limit / D_cout) ** (1 / N) when D_cout > D_limit.
    s = [
        0.5 + 0.5 * torch.sigmoid(m.alpha).item()
        for m in (model.sa1, model.sa2)
    ]
    d_cout = 13 * s[0] * s[1]
    rho = (d_limit / d_cout)**0.5 if d_cout > d_limit else 1.0
    model.sa1.penalty = model.sa2.penalty = rho


def cfg_for(model,
            work_dir,
            joint=False,
            d_limit=None,
            resume=False,
            **hook_options):
    """The runner's arguments: ``model`` (an instance) trained with the
    hook on :func:`dataset` for ``EPOCHS`` epochs."""
    hook = dict(
        type='ShapeAdaptorHook', alpha_interval=INTERVAL, **hook_options)
    if joint:
        hook['alpha_optimizer'] = None
    if d_limit is not None:
        hook.update(input_size=13, d_limit=d_limit)
    paramwise = dict(custom_keys={'.alpha': dict(lr_mult=0.2)})
    return dict(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dataset(),
            batch_size=BATCH,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.05, momentum=0.9),
            paramwise_cfg=paramwise),
        train_cfg=dict(by_epoch=True, max_epochs=EPOCHS),
        custom_hooks=[hook],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        resume=resume,
        log_level='WARNING')


def runner_for(*args, **kwargs):
    return Runner(**cfg_for(*args, **kwargs))


def assert_same_model(a, b):
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(v, w, rtol=1e-6, atol=1e-7, msg=k)


@pytest.mark.parametrize('joint,d_limit,timing', [(False, None, 'authors'),
                                                  (True, None, 'authors'),
                                                  (False, 6.0, 'authors'),
                                                  (False, 6.0, 'current'),
                                                  (True, 6.0, 'authors'),
                                                  (True, 6.0, 'current')])
def test_matches_algorithm1(tmp_path, joint, d_limit, timing):
    torch.manual_seed(0)
    model = Tiny()
    reference = algorithm1(copy.deepcopy(model), joint, d_limit, timing)
    hook = {} if timing == 'authors' else dict(penalty_timing=timing)
    runner = runner_for(model, tmp_path, joint, d_limit, **hook)
    runner.train()
    trained = runner.model
    assert not torch.equal(trained.sa1.alpha, Tiny().sa1.alpha)
    assert_same_model(trained, reference)
    if d_limit is not None:  # 13 * 0.79 * 0.72 = 7.4 > 6 at the start
        assert trained.sa1.penalty < 1
    assert trained.sa1.alpha.requires_grad  # restored after training


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(alpha_interval=0), ValueError, 'alpha_interval'),
    (dict(alpha_interval=2.5), ValueError, 'alpha_interval'),
    (dict(d_limit=10), ValueError, 'd_limit'),
    (dict(d_limit=-1, input_size=32), ValueError, 'd_limit'),
    (dict(alpha_optimizer='SGD'), TypeError, 'alpha_optimizer'),
    (dict(alpha_scheduler=dict(T_max=3)), TypeError, 'alpha_scheduler'),
    (dict(alpha_optimizer=None, alpha_scheduler=dict(type='ConstantLR')),
     ValueError, 'alpha_scheduler'),
    (dict(alpha_optimizer=dict(type='SDG', lr=0.1)), ValueError,
     r"alpha_optimizer type 'SDG' is not a registered optimizer"),
    (dict(alpha_scheduler=dict(type='CosineAnealingLR')), ValueError,
     r"alpha_scheduler type 'CosineAnealingLR' is not a registered"),
    (dict(penalty_timing='previous'), ValueError,
     r"penalty_timing must be one of \('authors', 'current'\)"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ShapeAdaptorHook(**kwargs)


def test_the_two_penalty_timings_by_hand():
    """One alpha iteration after the first, by hand: the authors' rho for
    the weight pass is the one of the alphas before the step; ours is the
    one of the stepped alphas. In the first iteration theirs is 1."""
    from types import SimpleNamespace

    def rho(model):  # Eq. (8) for sa1, sa2 with D_in = 13, D_limit = 6
        s = [
            0.5 + 0.5 * torch.sigmoid(m.alpha).item()
            for m in (model.sa1, model.sa2)
        ]
        return (6 / (13 * s[0] * s[1]))**0.5

    seen = {}
    for timing in ('authors', 'current'):
        torch.manual_seed(0)
        model = Tiny()
        hook = ShapeAdaptorHook(
            alpha_interval=1,
            input_size=13,
            d_limit=6.0,
            penalty_timing=timing)
        hook._adaptors = hook._trainable = [model.sa1, model.sa2]

        def step(runner, data_batch):  # an alpha step: both alphas + 0.5
            with torch.no_grad():
                for m in (model.sa1, model.sa2):
                    m.alpha += 0.5

        hook.optim_wrapper = object()  # the separate pass, step stubbed
        hook._alpha_step = step
        hook.before_train_iter(SimpleNamespace(model=model, iter=0), 0)
        seen[timing, 0] = model.sa1.penalty
        before = rho(model)  # the alphas of iteration 0's weight pass
        hook.before_train_iter(SimpleNamespace(model=model, iter=1), 0)
        seen[timing, 1] = model.sa1.penalty, before, rho(model)
    assert seen['authors', 0] == 1.0
    assert seen['current', 0] == pytest.approx(
        (6 / (13 * (0.5 + 0.5 * torch.sigmoid(torch.tensor(0.8)).item()) *
              (0.5 + 0.5 * torch.sigmoid(torch.tensor(0.3)).item())))**0.5)
    penalty, old, new = seen['authors', 1]
    assert penalty == pytest.approx(old) and penalty != pytest.approx(new)
    penalty, old, new = seen['current', 1]
    assert penalty == pytest.approx(new)


def test_penalty_at_test_time_and_fixed_adaptors_left_alone():
    from types import SimpleNamespace
    model = Tiny()
    model.sa2 = ShapeAdaptor(init_alpha=1.0, fixed=True, penalty=0.8)
    runner = SimpleNamespace(model=model, iter=1)
    hook = ShapeAdaptorHook(alpha_interval=2, input_size=13, d_limit=5)
    # Only sa1 is learnable: D_cout = 13 * s(0.3) = 10.2 > 5, N = 1.
    hook.before_run(runner)  # a test run: no train loop, no optimizer
    assert hook.optim_wrapper is None
    hook.before_test_epoch(runner)
    s1 = 0.5 + 0.5 * torch.sigmoid(torch.tensor(0.3)).item()
    assert model.sa1.penalty == pytest.approx(5 / (13 * s1))
    assert model.sa2.penalty == 0.8 and not model.sa2.alpha.requires_grad
    hook.before_train_iter(runner, 1)  # the joint path is not built here
    hook.after_train(runner)
    assert not model.sa2.alpha.requires_grad


def test_frozen_alpha_is_not_trained(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    model.sa1.alpha.requires_grad_(False)  # as frozen_stages leaves it
    before = model.sa1.alpha.detach().clone()
    runner = runner_for(model, tmp_path)
    runner.train()
    assert torch.equal(runner.model.sa1.alpha.detach(), before)
    assert not runner.model.sa1.alpha.requires_grad
    assert not torch.equal(runner.model.sa2.alpha.detach(),
                           Tiny().sa2.alpha.detach())


class SeededTiny(Tiny):
    """``torch.manual_seed(0); Tiny()`` as a registered type: a config
    holds a type, not a module."""

    def __init__(self):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            super().__init__()


class TinyData(Dataset):
    metainfo = dict()

    def __init__(self):
        self.data = dataset()

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index]


class TestShapeAdaptorHookRunner(RunnerTestCase):
    """Runner-level behaviour: the hook's own optimizer and scheduler across
    a checkpoint and resume, and its schedule in an iteration-based run."""

    def setUp(self):
        super().setUp()
        MODELS.register_module(module=SeededTiny, force=True)
        DATASETS.register_module(module=TinyData, force=True)

    def tearDown(self):
        MODELS.module_dict.pop('SeededTiny', None)
        DATASETS.module_dict.pop('TinyData', None)
        super().tearDown()

    def build(self, work_dir, **kwargs):
        cfg = cfg_for(
            dict(type='SeededTiny'), osp.join(self.temp_dir.name, work_dir),
            **kwargs)
        cfg['train_dataloader']['dataset'] = dict(type='TinyData')
        return self.build_runner(Config(cfg))

    def test_resume_continues_the_alpha_optimizer(self):
        allow_mmengine_checkpoints()
        # T_max explicit: the first run is cut short below, which would
        # otherwise shorten its cosine.
        cosine = dict(
            alpha_scheduler=dict(type='CosineAnnealingLR', T_max=EPOCHS))
        straight = self.build('straight', **cosine)
        straight.train()
        first = self.build('resumed', **cosine)
        first.train_loop._max_epochs = 1  # stop after the epoch-1 checkpoint
        first.train()
        ckpt = torch.load(
            osp.join(first.work_dir, 'epoch_1.pth'), weights_only=False)
        assert ckpt['shape_adaptor_hook']['optimizer']['state']
        resumed = self.build('resumed', resume=True, **cosine)
        resumed.train()
        assert_same_model(resumed.model, straight.model)
        hooks = [
            next(h for h in r.hooks if isinstance(h, ShapeAdaptorHook))
            for r in (straight, resumed)
        ]
        sa, sb = (h.optim_wrapper.state_dict() for h in hooks)
        for pa, pb in zip(sa['state'].values(), sb['state'].values()):
            torch.testing.assert_close(pa['momentum_buffer'],
                                       pb['momentum_buffer'])
        assert sa['param_groups'][0]['lr'] == sb['param_groups'][0]['lr']
        # The scheduler continues from the checkpoint, not from epoch 0.
        assert hooks[1].scheduler.state_dict() == \
            hooks[0].scheduler.state_dict()

    def test_iteration_based_run_anneals_alpha_lr_per_iteration(self):
        runner = self.build('iters')
        runner._train_loop = dict(by_epoch=False, max_iters=6)
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, ShapeAdaptorHook))
        assert hook._by_epoch is False and hook.scheduler.T_max == 6
        # Cosine over the 6 iterations ends at 0 (per epoch it would not
        # move).
        assert hook.optim_wrapper.param_groups[0]['lr'] == pytest.approx(0)
