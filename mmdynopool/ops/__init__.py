"""Optional compiled kernels, built on first use with torch's C++ extension
loader (needs a C++ compiler; about a minute of CPU once per machine, cached).

The cache lives in ``$MMDYNOPOOL_CACHE/torch_extensions`` (default
``~/.cache/mmdynopool``), one folder per torch version, compiler flags and
source hash, so two checkouts with different sources never rebuild each
other's kernel. torch (>= 2.14) guards a build with an OS-level lock on the
file ``lock`` (the file stays; the kernel drops the lock when its holder
dies, so a killed build does not block the next one). A holder that is
alive but stuck (e.g. a compiler orphaned by a killed build) is waited for
at most ``MMDYNOPOOL_KERNEL_WAIT`` seconds (default :data:`LOCK_WAIT_S`);
then the PyTorch code runs, with a warning, instead of hanging.

``MMDYNOPOOL_NO_EXT=1`` disables the kernels; without a compiler the pure
PyTorch paths run (with one warning).
"""
import hashlib
import os
import os.path as osp
import warnings
from typing import Optional

import torch

__all__ = ['dynopool_cpu_ext', 'kernel_build_dir']

_EXT = {}
NAME = 'mmdynopool_dynopool_cpu'
SOURCE = osp.join(osp.dirname(__file__), 'csrc', 'dynopool_cpu.cpp')
# torch >= 2.14 headers need C++20; OpenMP for at::parallel_for.
CFLAGS = ['-O3', '-std=c++20', '-fopenmp']
LDFLAGS = ['-fopenmp']
#: Default of ``MMDYNOPOOL_KERNEL_WAIT``: seconds to wait for another
#: process's build before using the PyTorch code.
LOCK_WAIT_S = 300.0


def kernel_build_dir() -> str:
    """Where the fused kernel is built and cached (see module docstring)."""
    cache = os.environ.get('MMDYNOPOOL_CACHE',
                           osp.expanduser('~/.cache/mmdynopool'))
    with open(SOURCE, 'rb') as f:
        digest = hashlib.sha1(f.read() + ' '.join(CFLAGS + LDFLAGS).encode())
    return osp.join(cache, 'torch_extensions',
                    f'torch-{torch.__version__}-{digest.hexdigest()[:12]}')


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


def _lock_free(build: str) -> bool:
    """Whether the build lock can be taken within the wait limit (taken and
    released at once: torch's loader takes it again)."""
    from filelock import FileLock, Timeout
    wait = _kernel_wait()
    try:
        with FileLock(osp.join(build, 'lock'), timeout=wait):
            return True
    except Timeout:
        warnings.warn(f'mmdynopool: another process has held the kernel '
                      f'build lock {build}/lock for over {wait:.0f} s; '
                      'using the PyTorch implementation')
        return False


def dynopool_cpu_ext() -> Optional[object]:
    """The fused CPU DynOPool kernel module, or ``None`` if unavailable."""
    if 'dynopool' in _EXT:
        return _EXT['dynopool']
    ext = None
    if os.environ.get('MMDYNOPOOL_NO_EXT', '0') != '1':
        _kernel_wait()  # a bad value is the user's error, not the kernel's
        try:
            from torch.utils.cpp_extension import load
            build = kernel_build_dir()
            os.makedirs(build, exist_ok=True)
            if _lock_free(build):
                if not osp.exists(osp.join(build, NAME + '.so')):
                    print('mmdynopool: compiling the fused CPU DynOPool '
                          f'kernel (once, about a minute) in {build}',
                          flush=True)
                # Copies: torch's loader appends to the lists it is given.
                ext = load(name=NAME, sources=[SOURCE],
                           extra_cflags=list(CFLAGS),
                           extra_ldflags=list(LDFLAGS),
                           build_directory=build)
        except Exception as e:  # no compiler, no headers, ...
            warnings.warn(f'mmdynopool: the fused CPU DynOPool kernel is '
                          f'unavailable ({type(e).__name__}: {e}); using '
                          'the PyTorch implementation')
    _EXT['dynopool'] = ext
    return ext
