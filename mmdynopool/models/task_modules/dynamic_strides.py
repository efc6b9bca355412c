"""Detection priors and RoI features whose strides follow the learned sizes.

mmdet's prior generators and RoI extractors assume fixed feature strides
(4, 8, 16, 32, ...): anchors are tiled ``stride`` pixels apart and RoIs are
scaled by ``1 / stride``. With DynOPool (or a Shape Adaptor) the stride of a
level is ``input / feature size``, different per axis and changing during
training. These drop-in replacements take the stride of every level, per
axis, from the actual feature-map sizes of the current forward and the input
size the resizing backbone recorded for it
(:func:`mmdynopool.models.resizing.current_input_shape`):
``stride = (W_in / w_level, H_in / h_level)``. Priors then tile the padded
batch exactly at any learned scale: the first prior centre sits at the
origin (mmdet's ``center_offset=0``) and the last one ``stride`` before the
far border, on both axes.

Where no resizing backbone ran (a human backbone), they are mmdet's classes
with the configured strides. At the initial scales and an input divisible
by the coarsest stride, the strides are the configured ones, so a DynOPool
detector starts as the human one (tested). For an input that is not
divisible, the human generator's nominal strides put its last priors up to
one stride past the image (and its valid flags drop them); these tile the
image instead (a conventions row).

Config names: ``DynamicStrideAnchorGenerator`` (for ``AnchorGenerator``,
same arguments), ``DynamicStrideRoIExtractor`` (for ``SingleRoIExtractor``,
same arguments).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import MODELS, TASK_UTILS
from torch import Tensor

from ..resizing import current_input_shape

__all__ = [
    'DynamicStrideAnchorGenerator', 'DynamicStrideRoIExtractor',
    'level_strides'
]


def level_strides(
    featmap_sizes: Sequence[Tuple[int, int]],
    input_shape: Optional[Tuple[int, int]] = None
) -> Optional[List[Tuple[float, float]]]:
    """``(stride_w, stride_h)`` of every level: the input size over the
    level's size, per axis (mmdet's ``(w, h)`` order).

    Args:
        featmap_sizes (Sequence[tuple[int, int]]): ``(h, w)`` per level.
        input_shape (tuple[int, int], optional): ``(H, W)`` of the input.
            Default: the latest resizing backbone's
            (:func:`~mmdynopool.models.resizing.current_input_shape`).

    Returns:
        list[tuple[float, float]] | None: None without an input shape.

    Example:
        >>> level_strides([(24, 40), (12, 20)], (96, 160))
        [(4.0, 4.0), (8.0, 8.0)]
        >>> level_strides([(31, 33)], (96, 96))[0]
        (2.909090909090909, 3.096774193548387)
    """
    shape = input_shape if input_shape is not None else current_input_shape()
    if shape is None:
        return None
    in_h, in_w = shape
    return [(in_w / int(w), in_h / int(h)) for h, w in featmap_sizes]


@TASK_UTILS.register_module()
class DynamicStrideAnchorGenerator(AnchorGenerator):
    """``AnchorGenerator`` whose per-level, per-axis strides come from the
    feature-map sizes of the current forward (module docstring).

    The anchors' shapes (``base_sizes``, ``scales``, ``ratios``) stay the
    configured ones; only where they are placed follows the learned sizes.
    Arguments as for :class:`mmdet.models.task_modules.AnchorGenerator`.

    Example:
        >>> gen = DynamicStrideAnchorGenerator(
        ...     strides=[8, 16], ratios=[1.0], scales=[4.0])
        >>> priors = gen.grid_priors([(10, 7), (5, 4)], device='cpu')
        >>> [tuple(p.shape) for p in priors]  # no backbone ran: fixed
        [(70, 4), (20, 4)]
    """

    def _strides(self, featmap_sizes) -> List[Tuple[float, float]]:
        dynamic = level_strides(featmap_sizes)
        return [tuple(s) for s in self.strides] if dynamic is None \
            else dynamic

    def grid_priors(self,
                    featmap_sizes: List[Tuple],
                    dtype: torch.dtype = torch.float32,
                    device='cuda') -> List[Tensor]:
        """Anchors of every level (see ``AnchorGenerator.grid_priors``)."""
        assert self.num_levels == len(featmap_sizes)
        strides = self._strides(featmap_sizes)
        return [
            self._grid(featmap_sizes[i], i, strides[i], dtype, device)
            for i in range(self.num_levels)
        ]

    def single_level_grid_priors(self,
                                 featmap_size,
                                 level_idx,
                                 dtype=torch.float32,
                                 device='cuda'):
        """One level's anchors (``grid_priors`` computes all levels'
        strides at once; alone, a level knows only its own size)."""
        stride = level_strides([featmap_size])
        stride = tuple(self.strides[level_idx]) if stride is None else \
            stride[0]
        return self._grid(featmap_size, level_idx, stride, dtype, device)

    def _grid(self, featmap_size, level_idx, stride, dtype, device):
        base_anchors = self.base_anchors[level_idx].to(device).to(dtype)
        feat_h, feat_w = featmap_size
        stride_w, stride_h = stride
        shift_x = torch.arange(0, feat_w, device=device).to(dtype) * stride_w
        shift_y = torch.arange(0, feat_h, device=device).to(dtype) * stride_h
        shift_xx, shift_yy = self._meshgrid(shift_x, shift_y)
        shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1)
        anchors = (base_anchors[None, :, :] + shifts[:, None, :]).view(-1, 4)
        if self.use_box_type:
            from mmdet.structures.bbox import HorizontalBoxes
            anchors = HorizontalBoxes(anchors)
        return anchors

    def sparse_priors(self,
                      prior_idxs,
                      featmap_size,
                      level_idx,
                      dtype=torch.float32,
                      device='cuda'):
        """Anchors at ``prior_idxs`` of one level, at its actual stride."""
        height, width = featmap_size
        stride = level_strides([featmap_size])
        stride_w, stride_h = tuple(self.strides[level_idx]) if stride is None \
            else stride[0]
        num_base = self.num_base_anchors[level_idx]
        base_id = prior_idxs % num_base
        x = (prior_idxs // num_base) % width * stride_w
        y = (prior_idxs // width // num_base) % height * stride_h
        priors = torch.stack([x, y, x, y], 1).to(dtype).to(device) + \
            self.base_anchors[level_idx][base_id, :].to(device)
        return priors

    def valid_flags(self, featmap_sizes, pad_shape, device='cuda'):
        """Valid anchors of an image padded to ``pad_shape`` within the
        batch, at the actual strides."""
        assert self.num_levels == len(featmap_sizes)
        strides = self._strides(featmap_sizes)
        flags = []
        for i in range(self.num_levels):
            stride_w, stride_h = strides[i]
            feat_h, feat_w = featmap_sizes[i]
            h, w = pad_shape[:2]
            valid_h = min(int(np.ceil(h / stride_h - 1e-9)), feat_h)
            valid_w = min(int(np.ceil(w / stride_w - 1e-9)), feat_w)
            flags.append(
                self.single_level_valid_flags((feat_h, feat_w),
                                              (valid_h, valid_w),
                                              self.num_base_anchors[i],
                                              device=device))
        return flags


@MODELS.register_module()
class DynamicStrideRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` that scales RoIs into each level by its actual
    per-axis stride (module docstring) instead of ``1 / featmap_stride``.

    RoIs are assigned to levels by their size as in mmdet (``finest_scale``,
    which does not involve strides); ``featmap_strides`` remain the
    fallback where no resizing backbone ran. mmcv's RoI layers take one
    ``spatial_scale``, so the RoIs are scaled per axis here and the layers
    built with ``spatial_scale=1``. Arguments as for
    :class:`mmdet.models.roi_heads.SingleRoIExtractor`.
    """

    def build_roi_layers(self, layer_cfg, featmap_strides):
        self._fixed_layers = super().build_roi_layers(layer_cfg,
                                                      featmap_strides)
        return super().build_roi_layers(layer_cfg, [1] * len(featmap_strides))

    def forward(self,
                feats,
                rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """RoI features of ``rois`` (``(n, 5)``: batch index, x1, y1, x2,
        y2 in input pixels) from the level each is assigned to."""
        strides = level_strides([f.shape[-2:] for f in feats])
        if strides is None:
            layers, self.roi_layers = self.roi_layers, self._fixed_layers
            try:
                return super().forward(feats, rois, roi_scale_factor)
            finally:
                self.roi_layers = layers
        out_size = self.roi_layers[0].output_size
        num_levels = len(feats)
        roi_feats = feats[0].new_zeros(
            rois.size(0), self.out_channels, *out_size)
        if len(rois) == 0:
            return roi_feats
        levels = self.map_roi_levels(rois, num_levels) if num_levels > 1 \
            else rois.new_zeros(rois.size(0), dtype=torch.long)
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        for i in range(num_levels):
            inds = (levels == i).nonzero(as_tuple=False).squeeze(1)
            if inds.numel() > 0:
                stride_w, stride_h = strides[i]
                scaled = rois[inds].clone()
                scaled[:, [1, 3]] /= stride_w
                scaled[:, [2, 4]] /= stride_h
                roi_feats[inds] = self.roi_layers[i](feats[i], scaled)
            else:
                # As mmdet: keep every level in the graph (DDP).
                roi_feats = roi_feats + sum(
                    x.view(-1)[0]
                    for x in self.parameters()) * 0. + feats[i].sum() * 0.
        return roi_feats
