"""What our tools do to the config and the process before mmengine runs.

* CPU-only distributed runs: mmengine's ``pytorch`` launcher calls
  ``torch.cuda.set_device`` and fails without CUDA unless a process group
  already exists, DDP needs ``device_ids=None`` on the CPU, and SyncBN needs
  GPUs. :func:`setup_distributed` initialises gloo itself and adapts the
  config so the same config trains on GPUs and on CPUs.
* Checkpoints and ``torch >= 2.6``: ``torch.load`` defaults to
  ``weights_only=True``, which rejects mmengine checkpoints (their message
  hub holds ``HistoryBuffer`` objects and numpy scalars).
  :func:`allow_mmengine_checkpoints` allow-lists exactly those globals, so a
  checkpoint the user names loads while ``weights_only`` stays on.
* One training per work dir: :func:`work_dir_lock`.
"""
import contextlib
import os
import os.path as osp
import socket
import time
from typing import Iterator, Optional

import torch
import torch.distributed as dist

__all__ = [
    'setup_distributed', 'close_distributed', 'allow_mmengine_checkpoints',
    'load_config', 'config_path', 'work_dir_lock'
]

#: The lock file a training holds in its work dir.
LOCK_FILE = '.train.lock'


def config_path(relative: str) -> str:
    """Absolute path of a shipped config, e.g. ``'toy/...py'``: the
    package's ``.mim/configs`` (what ``mmdynopool::`` reads), or the clone's
    ``configs/`` before the package was installed.

    Args:
        relative (str): A path under ``configs/``.

    Returns:
        str: The absolute path.
    """
    import os.path as osp
    pkg = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(pkg, '.mim',
                          'configs'), osp.join(osp.dirname(pkg), 'configs')):
        path = osp.join(root, relative)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'no shipped config {relative!r} under '
                            f'{pkg}/.mim/configs or the clone\'s configs/')


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                launcher: str = 'none',
                work_dir: Optional[str] = None):
    """The config of an OpenMMLab-style tool: ``config`` with
    ``cfg_options`` merged, prepared for ``launcher`` and with ``work_dir``
    from ``work_dir``, the config's, or ``work_dirs/<config name>``.

    Args:
        config (str): Config file.
        cfg_options (dict, optional): Merged into it.
        launcher (str): The launcher. Default: ``'none'``.
        work_dir (str, optional): Overrides the config's.

    Returns:
        Config: The config.
    """
    import os.path as osp

    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    setup_distributed(cfg, launcher)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` (in place) and the process for ``launcher``.

    Args:
        cfg (Config): The config (changed in place).
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher == 'pytorch' and not dist.is_initialized():
        missing = [
            k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
            if k not in os.environ
        ]
        if missing:
            raise ValueError(
                f'--launcher pytorch needs the environment torchrun sets '
                f'({", ".join(missing)} missing): start it with '
                'tools/dist_train.sh / torchrun, or use --launcher none')
    cfg.launcher = launcher
    if torch.cuda.is_available():
        return
    # CPU: BN instead of SyncBN, gloo, DDP on the CPU.
    cfg.pop('sync_bn', None)
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    if launcher == 'none':
        return
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if launcher == 'pytorch' and not dist.is_initialized():
        dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))


def close_distributed() -> None:
    """Leave the default process group together, after training: a gloo
    rank that exits while its peer still tears the group down can abort
    the peer (SIGABRT, seen once on a 2-process CPU run). A no-op without a
    process group.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def allow_mmengine_checkpoints() -> None:
    """Allow-list the globals mmengine writes into checkpoints for
    ``torch.load(weights_only=True)``.

    They are: ``HistoryBuffer`` (the message hub's logs), numpy arrays,
    dtypes and scalars (``_reconstruct``, ``scalar``, ``_codecs.encode`` for
    their bytes) and ``builtins.getattr``, which pickle uses to name the
    buffer's statistics methods. ``getattr`` lets a file look attributes up
    on allow-listed objects, but the loader still refuses to call anything
    that is not on the list.
    """
    import builtins
    import codecs

    import numpy as np
    from mmengine.logging import HistoryBuffer

    core = getattr(np, '_core', None) or np.core
    safe = [
        HistoryBuffer, np.ndarray, np.dtype, core.multiarray._reconstruct,
        core.multiarray.scalar, codecs.encode, builtins.getattr
    ]
    safe += [
        type(np.dtype(t))
        for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'bool')
    ]
    torch.serialization.add_safe_globals(safe)


def _global_rank(launcher: str) -> int:
    if launcher == 'none':
        return 0
    if dist.is_initialized():
        return dist.get_rank()
    for key in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if key in os.environ:
            return int(os.environ[key])
    return 0


@contextlib.contextmanager
def work_dir_lock(work_dir: str, launcher: str = 'none') -> Iterator[None]:
    """Hold ``work_dir/.train.lock`` (an exclusive ``flock``) for the
    block: a second training in the same work dir is a ``ValueError``
    naming the holder, where both used to run with interleaved logs and
    checkpoints. The operating system releases the lock when its process
    ends, however it ends, so a killed run leaves no stale lock. Only
    global rank 0 of a distributed run takes it.

    Args:
        work_dir (str): The training's work dir.
        launcher (str): The launcher. Default: ``'none'``.
    """
    import fcntl
    if _global_rank(launcher) != 0:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_FILE)
    f = open(path, 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or 'another process'
        f.close()
        raise ValueError(
            f'work_dir {work_dir!r} is in use by another training '
            f'({holder}, holding {path}): wait for it to end or choose '
            'another --work-dir') from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f'pid {os.getpid()} on {socket.gethostname()} since '
                f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n')
        f.flush()
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()
