"""The fused kernel's cache: keyed by source, and never a hang on its lock.

Each case runs in fresh processes (the kernel module is loaded once per
process) against a private copy of the built cache, so nothing recompiles.
"""
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest

import mmdynopool.ops as ops

LOAD = ('import mmdynopool.ops as o, sys; '
        'sys.exit(0 if o.dynopool_cpu_ext() is not None else 3)')


def env_with(cache, **extra):
    env = dict(os.environ, MMDYNOPOOL_CACHE=str(cache), OMP_NUM_THREADS='1')
    env.pop('MMDYNOPOOL_NO_EXT', None)
    env.update(extra)
    return env


@pytest.fixture
def private_cache(tmp_path):
    """A copy of the built kernel's folder under a fresh cache root."""
    assert ops.dynopool_cpu_ext() is not None, 'kernel failed to build'
    src = ops.kernel_build_dir()
    dst = tmp_path / 'cache' / osp.relpath(
        src, osp.dirname(osp.dirname(src)))
    shutil.copytree(src, dst)  # copy2 keeps mtimes: ninja sees no work
    return tmp_path / 'cache', dst


def test_build_dir_is_keyed_by_source_flags_and_torch(tmp_path, monkeypatch):
    import torch
    monkeypatch.setenv('MMDYNOPOOL_CACHE', str(tmp_path))
    first = ops.kernel_build_dir()
    assert first.startswith(str(tmp_path / 'torch_extensions'))
    assert f'torch-{torch.__version__}-' in first
    copy = tmp_path / 'edited.cpp'
    copy.write_text(open(ops.SOURCE).read() + '\n// edited\n')
    monkeypatch.setattr(ops, 'SOURCE', str(copy))
    assert ops.kernel_build_dir() != first
    monkeypatch.setattr(ops, 'CFLAGS', ops.CFLAGS + ['-g'])
    assert len({first, ops.kernel_build_dir()}) == 2


def test_stuck_lock_holder_falls_back_then_a_killed_one_does_not_block(
        private_cache):
    cache, build = private_cache
    holder = subprocess.Popen([
        sys.executable, '-c',
        'import sys, time; from filelock import FileLock; '
        f'lock = FileLock({str(build / "lock")!r}); lock.acquire(); '
        'print("held", flush=True); time.sleep(600)'
    ], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        start = time.monotonic()
        stuck = subprocess.run([sys.executable, '-c', LOAD],
                               env=env_with(cache, MMDYNOPOOL_KERNEL_WAIT='2'),
                               capture_output=True, text=True, timeout=120)
        assert stuck.returncode == 3, stuck.stderr[-2000:]
        assert 'held the kernel build lock' in stuck.stderr
        assert time.monotonic() - start < 60
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed holder's lock is gone with it: the kernel loads at once.
    ok = subprocess.run([sys.executable, '-c', LOAD],
                        env=env_with(cache, MMDYNOPOOL_KERNEL_WAIT='2'),
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_bad_wait_value_is_named(monkeypatch):
    monkeypatch.setenv('MMDYNOPOOL_KERNEL_WAIT', 'soon')
    monkeypatch.setitem(ops._EXT, 'dynopool', None)
    monkeypatch.delitem(ops._EXT, 'dynopool')
    with pytest.raises(ValueError, match="MMDYNOPOOL_KERNEL_WAIT.*'soon'"):
        ops.dynopool_cpu_ext()
