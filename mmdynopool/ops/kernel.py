"""The fused CPU kernel: built on first use, cached, verified, loaded as the
dispatcher ops ``torch.ops.mmdynopool_cpu.*``.

Build: torch's C++ extension loader (needs a C++ compiler; about a minute of
CPU once per environment). Cache: ``$MMDYNOPOOL_CACHE/kernels/<key>/``
(default ``~/.cache/mmdynopool``). The key hashes everything that changes
the binary: the source, the flags, the torch version and installation (its
headers and libraries), the Python ABI and the compiler (``$CXX`` and its
``--version``). Two environments (two venvs, a clone and a worktree) thus
keep one kernel each and never rebuild each other's.

A finished build is copied into the cache atomically with its SHA-256; a
kernel whose file does not match its checksum (cut short by a full disk, a
killed copy, an edit) is never loaded: it is rebuilt where the cache is
writable, else the PyTorch implementation runs, with one warning either way.
A read-only cache with a ready kernel is used as it is. Builds are
serialised by a file lock; a holder that is alive but stuck is waited for at
most ``MMDYNOPOOL_KERNEL_WAIT`` seconds (default :data:`LOCK_WAIT_S`), then
the PyTorch implementation runs, with a warning, instead of hanging.

``MMDYNOPOOL_NO_EXT=1`` (or ``true``, ``yes``, ``on``) disables the kernel;
without a compiler the PyTorch implementation runs (one warning).
"""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from functools import lru_cache
from typing import Optional

import torch

__all__ = [
    'fused_kernel', 'fused_kernel_applies', 'kernel_dir', 'kernel_disabled',
    'LOCK_WAIT_S'
]

NAME = 'mmdynopool_dynopool_cpu'
SOURCE = osp.join(osp.dirname(__file__), 'csrc', 'dynopool_cpu.cpp')
# torch >= 2.14 headers need C++20; OpenMP for at::parallel_for; no fused
# multiply-add contraction, so values match the PyTorch path bit for bit.
CFLAGS = ['-O3', '-std=c++20', '-fopenmp', '-ffp-contract=off']
LDFLAGS = ['-fopenmp']
#: Default of ``MMDYNOPOOL_KERNEL_WAIT``: seconds to wait for another
#: process's build before using the PyTorch code.
LOCK_WAIT_S = 300.0

_TRUE, _FALSE = ('1', 'true', 'yes', 'on'), ('', '0', 'false', 'no', 'off')
_STATE = {}


def kernel_disabled() -> bool:
    """``MMDYNOPOOL_NO_EXT``, read strictly: a value that is neither true
    nor false is a ValueError naming it.

    Returns:
        bool: Whether the kernel is off.
    """
    value = os.environ.get('MMDYNOPOOL_NO_EXT', '')
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(f'MMDYNOPOOL_NO_EXT must be one of {_TRUE} (disable '
                     f'the fused kernel) or {_FALSE[1:]}, got {value!r}')


def _kernel_wait() -> float:
    value = os.environ.get('MMDYNOPOOL_KERNEL_WAIT', str(LOCK_WAIT_S))
    try:
        wait = float(value)
    except ValueError:
        wait = -1.0
    if not wait >= 0:
        raise ValueError('MMDYNOPOOL_KERNEL_WAIT must be a number of seconds '
                         f'>= 0, got {value!r}')
    return wait


@lru_cache(maxsize=None)
def _compiler_id() -> str:
    cxx = os.environ.get('CXX', 'c++')
    try:
        out = subprocess.run([cxx, '--version'],
                             capture_output=True,
                             text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = 'missing'
    return f'{cxx}\n{out}'


def kernel_dir() -> str:
    """This environment's kernel folder in the cache (see module
    docstring).

    Returns:
        str: The folder.
    """
    cache = os.environ.get('MMDYNOPOOL_CACHE',
                           osp.expanduser('~/.cache/mmdynopool'))
    digest = hashlib.sha256()
    with open(SOURCE, 'rb') as f:
        digest.update(f.read())
    for part in (' '.join(CFLAGS + LDFLAGS), torch.__version__,
                 osp.realpath(osp.dirname(torch.__file__)),
                 str(torch._C._GLIBCXX_USE_CXX11_ABI),
                 sysconfig.get_config_var('SOABI')
                 or sys.version, _compiler_id()):
        digest.update(b'\0' + part.encode())
    return osp.join(cache, 'kernels',
                    f'torch-{torch.__version__}-{digest.hexdigest()[:16]}')


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _verified(lib: str) -> bool:
    """Whether ``lib`` exists and matches the checksum written with it."""
    try:
        with open(lib + '.sha256') as f:
            expected = f.read().strip()
        return _sha256(lib) == expected
    except OSError:
        return False


def _build_into(folder: str, lib: str) -> None:
    """Compile in a private temporary folder, load that build, then move a
    copy and its checksum into ``folder`` atomically."""
    from torch.utils.cpp_extension import load
    tmp = tempfile.mkdtemp(prefix='build-', dir=folder)
    try:
        print(
            f'mmdynopool: compiling the fused CPU DynOPool kernel (once '
            f'per environment, about a minute) in {folder}',
            flush=True)
        built = load(
            name=NAME,
            sources=[SOURCE],
            extra_cflags=list(CFLAGS),
            extra_ldflags=list(LDFLAGS),
            build_directory=tmp,
            is_python_module=False,
            verbose=False)
        built = built if isinstance(built, str) else osp.join(
            tmp, NAME + '.so')
        part = lib + f'.part{os.getpid()}'
        shutil.copyfile(built, part)
        with open(part + '.sha256', 'w') as f:
            f.write(_sha256(part))
        os.replace(part + '.sha256', lib + '.sha256.new')
        os.replace(part, lib)
        os.replace(lib + '.sha256.new', lib + '.sha256')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load() -> Optional[str]:
    if kernel_disabled():
        return None
    _kernel_wait()  # a bad value is the user's error, not the kernel's
    folder = kernel_dir()
    lib = osp.join(folder, NAME + '.so')
    if _verified(lib):
        torch.ops.load_library(lib)
        return lib
    damaged = osp.exists(lib)
    try:
        os.makedirs(folder, exist_ok=True)
        from filelock import FileLock, Timeout
        wait = _kernel_wait()
        try:
            with FileLock(osp.join(folder, 'lock'), timeout=wait):
                if _verified(lib):  # another process built it meanwhile
                    torch.ops.load_library(lib)
                    return lib
                if damaged:
                    warnings.warn(f'mmdynopool: the cached kernel {lib} does '
                                  'not match its checksum (cut short or '
                                  'changed); rebuilding it')
                _build_into(folder, lib)
                return lib
        except Timeout:
            warnings.warn(f'mmdynopool: another process has held the kernel '
                          f'build lock {folder}/lock for over {wait:.0f} s; '
                          'using the PyTorch implementation')
            return None
    except Exception as e:  # no compiler, read-only cache, no headers, ...
        what = (f'the cached kernel {lib} does not match its checksum (cut '
                'short or changed) and cannot be rebuilt: the fused CPU '
                'DynOPool kernel is unavailable'
                if damaged else 'the fused CPU DynOPool kernel is unavailable')
        warnings.warn(f'mmdynopool: {what} ({type(e).__name__}: {e}); using '
                      'the PyTorch implementation')
        return None


def fused_kernel() -> Optional[str]:
    """Load the fused CPU kernel once per process (building it if needed);
    the path of the loaded library, or None where it is unavailable or
    disabled.

    Returns:
        str | None: The library path, or None.
    """
    if 'lib' not in _STATE:
        _STATE['lib'] = _load()
    return _STATE['lib']


def fused_kernel_applies(x: torch.Tensor, mode: str) -> bool:
    """Whether the fused kernel computes this call: ``'max'`` on a float32 /
    float64 CPU tensor, kernel loaded.

    Args:
        x (Tensor): The layer input.
        mode (str): ``'max'`` or ``'avg'``.

    Returns:
        bool: Whether the kernel runs.
    """
    return (mode == 'max' and x.device.type == 'cpu'
            and x.dtype in (torch.float32, torch.float64)
            and fused_kernel() is not None)
