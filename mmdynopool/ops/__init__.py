"""DynOPool as dispatcher ops (``torch.ops.mmdynopool.*``) with a fused CPU
kernel and a device-generic PyTorch backend; see :mod:`.dynopool` for the
definitions and :mod:`.kernel` for how the kernel is built and cached."""
from .dynopool import (MODES, POSITION_GRADS, backward_generic,
                       dynopool_backward, dynopool_forward, forward_generic)
from .kernel import (fused_kernel, fused_kernel_applies, kernel_dir,
                     kernel_disabled)

__all__ = [
    'dynopool_forward', 'dynopool_backward', 'forward_generic',
    'backward_generic', 'fused_kernel', 'fused_kernel_applies', 'kernel_dir',
    'kernel_disabled', 'MODES', 'POSITION_GRADS'
]
