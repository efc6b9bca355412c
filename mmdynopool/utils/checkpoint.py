"""Reading checkpoints the user names: strictly, safely, with the file named.

* :func:`read_checkpoint` loads with ``weights_only=True`` (mmengine's
  globals allow-listed) and turns torch's many ways of failing on a
  truncated, empty or foreign file into one ``ValueError`` that names the
  file, without torch's advice to turn ``weights_only`` off.
* :func:`load_strict` loads a state dict into a model and refuses missing,
  unexpected or mis-shaped keys (alpha included), which mmengine's loader
  only warns about: a checkpoint of another architecture would otherwise
  evaluate a randomly initialised model.
* :func:`newest_loadable_checkpoint` is what ``--resume`` resumes from: the
  newest checkpoint in a work dir that can be read, skipping (with a
  warning) any that was cut off by a killed job; :func:`check_resumable`
  refuses a checkpoint no training wrote; :func:`keep_two_checkpoints`
  makes sure a killed write leaves an older checkpoint behind.
"""
import glob
import os.path as osp
import re
import warnings
from typing import Dict, Mapping, Optional

import torch
from torch import nn

__all__ = [
    'read_checkpoint', 'load_strict', 'check_fits', 'check_resumable',
    'newest_loadable_checkpoint', 'keep_two_checkpoints'
]


def read_checkpoint(path: str) -> Dict:
    """The checkpoint at ``path`` as a dict (``weights_only=True``).

    Args:
        path (str): A checkpoint file.

    Returns:
        dict: The checkpoint.
    """
    from .runtime import allow_mmengine_checkpoints
    if not isinstance(path, str) or not osp.isfile(path):
        raise ValueError(f'checkpoint {path!r} is not a file')
    allow_mmengine_checkpoints()
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated, empty, random bytes, unsafe globals
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        # torch's own reason line; never its advice to drop weights_only.
        detail = next(
            (line for line in lines if 'unsupported' in line.lower()),
            None) or next(
                (line for line in lines if 'weights_only' not in line), '')
        if 'unsupported global' in detail.lower():
            why = ('it holds objects outside the allow-list of mmengine '
                   f'checkpoint types ({detail[:200]}), so it was not loaded')
        else:
            why = (f'it is truncated, empty or not a PyTorch checkpoint '
                   f'({type(e).__name__}: {detail[:200]})')
        raise ValueError(f'checkpoint {path!r} cannot be read: {why}') \
            from None
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {path!r} holds a '
                         f'{type(ckpt).__name__}, not a dict')
    return ckpt


def load_strict(model: nn.Module, path: str) -> None:
    """Load ``path``'s ``state_dict`` into ``model``; every key must match
    in name and shape (missing, unexpected or mis-shaped keys are a
    ``ValueError`` listing them).

    Args:
        model (nn.Module): The model.
        path (str): A checkpoint file.
    """
    state = check_fits(model, read_checkpoint(path), path)
    model.load_state_dict(state, strict=True)


def check_fits(model: nn.Module, ckpt: Mapping, path: str) -> Dict:
    """The state dict of checkpoint ``ckpt`` (read from ``path``), ``module.``
    prefixes dropped, if it fits ``model`` key for key and shape for shape;
    a ``ValueError`` listing missing, unexpected or mis-shaped keys
    otherwise.

    Args:
        model (nn.Module): The model.
        ckpt (Mapping): The checkpoint (as read).
        path (str): Its file, for the message.

    Returns:
        dict: The state dict.
    """
    state = ckpt.get('state_dict', ckpt)
    if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'checkpoint {path!r} has no state_dict of tensors')
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f'{k}: checkpoint {tuple(state[k].shape)}, model '
                    f'{tuple(own[k].shape)}' for k in set(own) & set(state)
                    if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:

        def few(items):
            return ', '.join(items[:5]) + (f' (+{len(items) - 5} more)'
                                           if len(items) > 5 else '')

        parts = [
            f'{name} keys: {few(items)}'
            for name, items in (('missing', missing),
                                ('unexpected', unexpected), ('mis-shaped',
                                                             shapes)) if items
        ]
        raise ValueError(f'checkpoint {path!r} does not fit the model of '
                         'this config (another architecture?): ' +
                         '; '.join(parts))
    return state


def check_resumable(ckpt: Mapping, path: str) -> None:
    """A checkpoint to resume from must come from a training run:
    mmengine's ``meta`` with the ``epoch`` and ``iter`` it stopped at (a
    weights-only file used to end in ``KeyError: 'epoch'``).

    Args:
        ckpt (Mapping): The checkpoint (as read).
        path (str): Its file, for the message.
    """
    meta = ckpt.get('meta')
    if not (isinstance(meta, Mapping) and 'epoch' in meta and 'iter' in meta):
        raise ValueError(
            f'checkpoint {path!r} cannot be resumed: it has no meta.epoch / '
            'meta.iter (it was not written by a training run, e.g. published '
            'weights); to start from its weights pass it as load_from '
            '(--cfg-options load_from=...) instead of --resume')


def keep_two_checkpoints(cfg) -> None:
    """Raise the config's ``CheckpointHook`` ``max_keep_ckpts`` of 1 to 2,
    in place. mmengine deletes the oldest kept checkpoint *before* writing
    the new one, so with one kept a job killed during the write leaves
    nothing to resume from; with two, the previous one is still there
    (:func:`newest_loadable_checkpoint` skips the cut-off file).

    Args:
        cfg (Config): A training config (changed in place).
    """
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if hook and hook.get('max_keep_ckpts', -1) == 1:
        hook['max_keep_ckpts'] = 2


def newest_loadable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest ``*.pth`` in ``work_dir`` that :func:`read_checkpoint`
    can read (mmengine's ``last_checkpoint`` first), or ``None``.

    Args:
        work_dir (str): A training's work dir.

    Returns:
        str | None: The checkpoint path.
    """
    candidates = []
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named:
            candidates.append(named)
    candidates += sorted(
        glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime, reverse=True)
    seen = set()
    for path in candidates:
        if path in seen or not osp.isfile(path):
            continue
        seen.add(path)
        try:
            read_checkpoint(path)
        except ValueError as e:
            warnings.warn(f'--resume: skipping {e}')
            continue
        return path
    return None
