"""mmdet's ``HRFPN`` for HRNet streams of any size.

mmdet's ``HRFPN`` up-samples stream ``i`` by ``2 ** i`` before concatenating
the streams, which assumes the human design's sizes (each stream half the
previous one). With learned stream scales (``DynOPoolHRNet``) the streams no
longer halve, and the concatenation fails. :class:`DynamicSizeHRFPN`
resizes every stream to stream 0's actual size instead; where each stream is
exactly half the previous one the two are the same bilinear resize
(``align_corners=False``), so it equals ``HRFPN`` on the human design
(tested). Its pyramid levels are average-pooled from the fused map as in
``HRFPN``; their strides then come from the actual sizes
(``DynamicStrideAnchorGenerator``).
"""
import torch
import torch.nn.functional as F
from mmdet.models.necks import HRFPN
from mmdet.registry import MODELS
from torch.utils.checkpoint import checkpoint

__all__ = ['DynamicSizeHRFPN']


@MODELS.register_module()
class DynamicSizeHRFPN(HRFPN):
    """``HRFPN`` whose streams are resized to stream 0's size (any learned
    sizes). Same arguments and checkpoint keys as mmdet's ``HRFPN``.

    Example:
        >>> import torch
        >>> neck = DynamicSizeHRFPN([8, 16], 8, num_outs=2)
        >>> feats = [torch.rand(1, 8, 20, 24), torch.rand(1, 16, 7, 13)]
        >>> [tuple(o.shape[-2:]) for o in neck(feats)]
        [(20, 24), (10, 12)]
    """

    def forward(self, inputs):
        """Fuse the streams at stream 0's size, then pool the pyramid.

        Args:
            inputs (Sequence[Tensor]): One map per stream, ``(N, C_i, h_i,
                w_i)``, stream 0 first.

        Returns:
            tuple[Tensor]: ``num_outs`` maps, ``out_channels`` each.
        """
        if len(inputs) != self.num_ins:
            raise ValueError(f'inputs must hold {self.num_ins} maps (one '
                             f'per stream), got {len(inputs)}')
        size = inputs[0].shape[-2:]
        fused = torch.cat(
            [inputs[0]] +
            [F.interpolate(x, size=size, mode='bilinear')
             for x in inputs[1:]], 1)
        run = (lambda m, t: checkpoint(m, t, use_reentrant=False)) \
            if self.with_cp and fused.requires_grad else (lambda m, t: m(t))
        fused = run(self.reduction_conv, fused)
        levels = [fused] + [
            self.pooling(fused, kernel_size=2**i, stride=2**i)
            for i in range(1, self.num_outs)
        ]
        return tuple(run(conv, x) for conv, x in zip(self.fpn_convs, levels))
