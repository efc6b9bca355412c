"""``mmdynopool.engine.runner.train`` (what tools/train.py runs): one
training per work dir, ``--resume`` that says what it does, checkpoints
that survive a kill, and every checkpoint read with ``weights_only``."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmdynopool.engine.runner import train
from mmdynopool.utils import newest_loadable_checkpoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def tiny_config(tmp_path, epochs=1, keep=1, depth=18, name='tiny.py'):
    """A CIFAR ResNet at 4-8-16-32 channels on 8 digits, batch 4 (two
    iterations an epoch), a checkpoint every epoch keeping ``keep``; written
    to a config file as a user's would be."""
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            custom_imports=dict(
                imports=['mmdynopool'], allow_failed_imports=False),
            model=dict(
                type='ImageClassifier',
                data_preprocessor=dict(
                    num_classes=10, mean=[33.3] * 3, std=[78.6] * 3),
                backbone=dict(
                    type='ResNet_CIFAR',
                    depth=depth,
                    stem_channels=4,
                    base_channels=4),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead',
                    num_classes=10,
                    in_channels=32 * (4 if depth == 50 else 1))),
            train_dataloader=dict(
                batch_size=4,
                num_workers=0,
                dataset=dict(
                    type='ToyDigits',
                    split='train',
                    num_train=100,
                    num_val=20,
                    indices=8,
                    pipeline=[dict(type='PackInputs')],
                    serialize_data=False),
                sampler=dict(type='DefaultSampler', shuffle=False)),
            train_cfg=dict(by_epoch=True, max_epochs=epochs),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
            default_hooks=dict(
                checkpoint=dict(
                    type='CheckpointHook', interval=1, max_keep_ckpts=keep)),
            log_level='WARNING'))
    path = str(tmp_path / name)
    cfg.dump(path)
    return path


def test_a_second_training_in_the_work_dir_is_refused(tmp_path):
    """Two trainings in one work dir used to both run, their logs and
    checkpoints interleaved. The lock is released when its process ends,
    however it ends."""
    from mmdynopool.utils.runtime import work_dir_lock
    work = str(tmp_path / 'work')
    holder = subprocess.Popen([
        sys.executable, '-c', 'import sys, time\n'
        'from mmdynopool.utils.runtime import work_dir_lock\n'
        f'with work_dir_lock({work!r}):\n'
        '    print("locked", flush=True)\n'
        '    time.sleep(120)\n'
    ],
                              cwd=ROOT,
                              stdout=subprocess.PIPE,
                              text=True,
                              env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(
                ValueError,
                match=r'work_dir .*work.* is in use '
                r'by another training \(pid \d+'):
            train(tiny_config(tmp_path), work)
    finally:
        holder.kill()
        holder.wait()
    with work_dir_lock(work):  # free again once its holder is gone
        pass


def test_resume_in_an_empty_work_dir_says_so(tmp_path):
    with pytest.warns(
            UserWarning,
            match=r'--resume: no readable checkpoint '
            r'in the work dir .*starts from scratch'):
        runner = train(
            tiny_config(tmp_path), str(tmp_path / 'w'), resume='auto')
    assert runner.iter == 2


def test_resume_from_a_checkpoint_that_cannot_be_resumed(tmp_path):
    config = tiny_config(tmp_path)
    # Weights only (no meta.epoch / iter): what ended in KeyError: 'epoch'.
    runner = train(config, str(tmp_path / 'a'))
    bare = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=runner.model.state_dict()), bare)
    with pytest.raises(
            ValueError,
            match=r"weights\.pth' cannot be resumed"
            r'.*meta.*epoch.*load_from'):
        train(config, str(tmp_path / 'b'), resume=bare)
    # Another network's training checkpoint: refused, not half loaded.
    other = train(
        tiny_config(tmp_path, depth=50, name='r50.py'), str(tmp_path / 'c'))
    ckpt = osp.join(other.work_dir, 'epoch_1.pth')
    with pytest.raises(
            ValueError,
            match=r'does not fit the model.*'
            r'unexpected keys.*mis-shaped keys'):
        train(config, str(tmp_path / 'd'), resume=ckpt)


def test_a_kill_while_writing_the_newest_checkpoint_keeps_progress(
        tmp_path, monkeypatch):
    """The config keeps one checkpoint; mmengine deletes the old one before
    writing the new, so a kill during the write used to leave nothing to
    resume from. Training keeps at least two."""
    import mmengine.runner.runner as mm_runner
    save = mm_runner.save_checkpoint
    calls = []

    def killed_on_the_third(checkpoint, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) < 3:
            return save(checkpoint, filename, *args, **kwargs)
        with open(filename, 'wb') as f:  # cut off mid-write
            f.write(b'PK\x03\x04 half a checkpoint')
        raise KeyboardInterrupt

    monkeypatch.setattr(mm_runner, 'save_checkpoint', killed_on_the_third)
    work = str(tmp_path / 'work')
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, epochs=3, keep=1), work)
    assert osp.isfile(osp.join(work, 'epoch_3.pth'))  # the cut-off one
    assert newest_loadable_checkpoint(work) == osp.join(work, 'epoch_2.pth')
    monkeypatch.undo()
    runner = train(
        tiny_config(tmp_path, epochs=3, keep=1), work, resume='auto')
    assert runner.epoch == 3
