"""Optional compiled kernels, built on first use with torch's C++ extension
loader (needs a C++ compiler; about a minute of CPU once per machine and
source version, cached under ``~/.cache/mmdynopool/torch_extensions``).

``MMDYNOPOOL_NO_EXT=1`` disables them; without a compiler the pure PyTorch
paths run (with one warning).
"""
import os
import os.path as osp
import warnings
from typing import Optional

import torch

__all__ = ['dynopool_cpu_ext']

_EXT = {}


def dynopool_cpu_ext() -> Optional[object]:
    """The fused CPU DynOPool kernel module, or ``None`` if unavailable."""
    if 'dynopool' in _EXT:
        return _EXT['dynopool']
    ext = None
    if os.environ.get('MMDYNOPOOL_NO_EXT', '0') != '1':
        try:
            from torch.utils.cpp_extension import load
            cache = os.environ.get(
                'MMDYNOPOOL_CACHE', osp.expanduser('~/.cache/mmdynopool'))
            build = osp.join(cache, 'torch_extensions',
                             f'torch-{torch.__version__}')
            os.makedirs(build, exist_ok=True)
            ext = load(
                name='mmdynopool_dynopool_cpu',
                sources=[osp.join(osp.dirname(__file__), 'csrc',
                                  'dynopool_cpu.cpp')],
                # torch >= 2.14 headers need C++20; OpenMP for
                # at::parallel_for.
                extra_cflags=['-O3', '-std=c++20', '-fopenmp'],
                extra_ldflags=['-fopenmp'],
                build_directory=build)
        except Exception as e:  # no compiler, no headers, ...
            warnings.warn(f'mmdynopool: the fused CPU DynOPool kernel is '
                          f'unavailable ({type(e).__name__}: {e}); using '
                          'the PyTorch implementation')
    _EXT['dynopool'] = ext
    return ext
