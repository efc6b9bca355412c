"""The fused kernel's cache: keyed on the environment, verified before it is
loaded, usable read-only, never a hang on its lock.

Each case runs in fresh processes (a kernel library is loaded once per
process) against a private copy of the built kernel.
"""
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from mmdynopool.ops import kernel

LOAD = ('import mmdynopool.ops as o, sys; '
        'sys.exit(0 if o.fused_kernel() is not None else 3)')
# Run LOAD where nothing may be written in the cache (tests run as root,
# whom file modes do not stop): creating a folder or a lock there fails.
READ_ONLY = (
    'import os, filelock\n'
    'cache = os.environ["MMDYNOPOOL_CACHE"]\n'
    'def guard(f):\n'
    '    def call(self_or_path, *a, **k):\n'
    '        path = a[0] if isinstance(self_or_path, filelock.FileLock) '
    'else self_or_path\n'
    '        if str(path).startswith(cache):\n'
    '            raise PermissionError(f"read-only cache: {path}")\n'
    '        return f(self_or_path, *a, **k)\n'
    '    return call\n'
    'os.makedirs = guard(os.makedirs)\n'
    'filelock.FileLock.__init__ = guard(filelock.FileLock.__init__)\n' +
    LOAD.replace('; ', '\n'))


def env_with(cache, **extra):
    env = dict(os.environ, MMDYNOPOOL_CACHE=str(cache), OMP_NUM_THREADS='1')
    env.pop('MMDYNOPOOL_NO_EXT', None)
    env.update(extra)
    return env


def run(code, cache, timeout=300, **extra):
    return subprocess.run([sys.executable, '-c', code],
                          env=env_with(cache, **extra),
                          capture_output=True,
                          text=True,
                          timeout=timeout)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A copy of the built kernel's folder under a fresh cache root."""
    assert kernel.fused_kernel() is not None, 'kernel failed to build'
    src = kernel.kernel_dir()
    monkeypatch.setenv('MMDYNOPOOL_CACHE', str(tmp_path / 'cache'))
    dst = kernel.kernel_dir()
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('lock'))
    return tmp_path / 'cache', dst


def test_key_covers_source_flags_torch_and_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv('MMDYNOPOOL_CACHE', str(tmp_path))
    first = kernel.kernel_dir()
    assert first.startswith(str(tmp_path / 'kernels'))
    assert f'torch-{torch.__version__}-' in first
    copy = tmp_path / 'edited.cpp'
    copy.write_text(open(kernel.SOURCE).read() + '\n// edited\n')
    keys = {first}
    with monkeypatch.context() as m:
        m.setattr(kernel, 'SOURCE', str(copy))
        keys.add(kernel.kernel_dir())
    with monkeypatch.context() as m:
        m.setattr(kernel, 'CFLAGS', kernel.CFLAGS + ['-g'])
        keys.add(kernel.kernel_dir())
    with monkeypatch.context() as m:
        # Another environment: the same torch version installed elsewhere.
        m.setattr(torch, '__file__',
                  str(tmp_path / 'venv2' / 'torch' / '__init__.py'))
        keys.add(kernel.kernel_dir())
    with monkeypatch.context() as m:
        m.setattr(kernel, '_compiler_id', lambda: 'g++ 99')
        keys.add(kernel.kernel_dir())
    assert len(keys) == 5
    assert kernel.kernel_dir() == first  # and stable


def test_ready_kernel_loads_from_a_read_only_cache(private_cache):
    cache, _ = private_cache
    out = run(READ_ONLY, cache)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'compiling' not in out.stdout


@pytest.mark.parametrize('damage', ['truncate', 'flip'])
def test_a_damaged_kernel_is_never_loaded(private_cache, damage):
    # A kernel cut short (a full disk, a killed copy) made every process die
    # with SIGBUS at its first forward; one with a flipped byte could do
    # anything. Read-only here: one warning, the PyTorch code, exit 0.
    cache, build = private_cache
    lib = osp.join(build, kernel.NAME + '.so')
    data = open(lib, 'rb').read()
    with open(lib, 'wb') as f:
        if damage == 'truncate':
            f.write(data[:len(data) // 2])
        else:
            f.write(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    code = READ_ONLY.replace(
        'sys.exit(0 if', 'import torch\n'
        'from mmdynopool.models import DynOPool2d\n'
        'DynOPool2d(0.6)(torch.rand(1, 2, 9, 9)).sum().backward()\n'
        'sys.exit(0 if')
    out = run(code, cache)
    assert out.returncode == 3, (out.returncode, out.stderr[-2000:])
    assert out.stderr.count('Warning: mmdynopool: ') == 1  # one message
    assert 'does not match its checksum' in out.stderr  # saying why
    assert 'cannot be rebuilt' in out.stderr


@pytest.mark.slow
def test_a_damaged_kernel_is_rebuilt_where_the_cache_is_writable(
        private_cache):
    cache, build = private_cache
    lib = osp.join(build, kernel.NAME + '.so')
    data = open(lib, 'rb').read()
    with open(lib, 'wb') as f:
        f.write(data[:len(data) // 2])
    out = run(LOAD, cache, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'rebuilding' in out.stderr and 'compiling' in out.stdout
    assert run(LOAD, cache).returncode == 0  # and then it is ready


def test_stuck_lock_holder_falls_back(private_cache):
    # A build is needed (no kernel) and another live process holds the
    # build lock: after MMDYNOPOOL_KERNEL_WAIT seconds, the PyTorch code.
    cache, build = private_cache
    os.remove(osp.join(build, kernel.NAME + '.so'))
    holder = subprocess.Popen([
        sys.executable, '-c',
        'import sys, time; from filelock import FileLock; '
        f'lock = FileLock({str(osp.join(build, "lock"))!r}); '
        'lock.acquire(); print("held", flush=True); time.sleep(600)'
    ],
                              stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        start = time.monotonic()
        stuck = run(LOAD, cache, timeout=120, MMDYNOPOOL_KERNEL_WAIT='2')
        assert stuck.returncode == 3, stuck.stderr[-2000:]
        assert 'held the kernel build lock' in stuck.stderr
        assert time.monotonic() - start < 60
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


@pytest.mark.parametrize('value,disabled', [('1', True), ('true', True),
                                            ('YES', True), ('on', True),
                                            ('0', False), ('false', False),
                                            ('', False), ('off', False)])
def test_no_ext_values(monkeypatch, value, disabled):
    monkeypatch.setenv('MMDYNOPOOL_NO_EXT', value)
    assert kernel.kernel_disabled() is disabled


def test_bad_settings_are_named(monkeypatch):
    monkeypatch.setenv('MMDYNOPOOL_NO_EXT', 'maybe')
    with pytest.raises(ValueError, match="MMDYNOPOOL_NO_EXT.*'maybe'"):
        kernel.kernel_disabled()
    monkeypatch.setenv('MMDYNOPOOL_NO_EXT', '0')
    monkeypatch.setenv('MMDYNOPOOL_KERNEL_WAIT', 'soon')
    monkeypatch.delitem(kernel._STATE, 'lib', raising=False)
    with pytest.raises(ValueError, match="MMDYNOPOOL_KERNEL_WAIT.*'soon'"):
        kernel.fused_kernel()
