"""Differentiable GMACs of a DynOPool model (DynOPool paper, Eq. 7).

``L_GMACs = sum_l (H_t(l) W_t(l)) / (H_0(l) W_0(l)) * GMACs_0[l]`` over the
convolution and linear layers ``l``. :class:`GMACsCounter` measures
``GMACs_0`` once, with ``torch.utils.flop_counter.FlopCounterMode`` on one
``(1, C, H, W)`` input, and finds which DynOPool governs each layer's size by
perturbing every alpha in turn (one extra forward per DynOPool, at set-up
only). During training it reads the real input size of every DynOPool call
(forward pre-hooks) and chains the straight-through sizes, so the loss's
value uses the real integer sizes while its gradient reaches every upstream
alpha through the continuous sizes.

A layer's size is taken to scale with the output of the DynOPool that
governs it (the last one on its path): exact for the stride-1 convolutions
after a DynOPool, the usual case.

:func:`module_flops` is the one reading of ``FlopCounterMode``'s per-module
counts; :func:`count_macs` here and
:func:`mmdynopool.analysis.complexity_report` are built on it.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..models.layers import DynOPool2d, dynopool_output_size
from ..utils.inspection import eval_mode

__all__ = ['GMACsCounter', 'count_macs', 'module_flops']

_COUNTED = (nn.Conv2d, nn.Linear)
_PERTURB = 1.6  # scale factor applied to one pool's r while probing


def module_flops(
        model: nn.Module,
        inputs: Tensor,
        forward: Optional[Callable] = None,
        custom_mapping: Optional[Dict] = None) -> Dict[str, Dict[object, int]]:
    """FLOPs per operator of every submodule of ``model``, counted by
    ``FlopCounterMode`` in one forward pass without gradients.

    Args:
        model (nn.Module): Whose submodule names key the result.
        inputs (Tensor): The forward's input.
        forward (callable, optional): How to run ``model`` on ``inputs``.
            Default: ``model``.
        custom_mapping (dict, optional): Extra ``aten`` op -> FLOP formula,
            as ``FlopCounterMode`` takes it.

    Returns:
        dict: Submodule name (``''`` for ``model`` itself) -> ``{op: FLOPs}``,
        each module's count including its children's.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from mmdynopool.engine.gmacs import module_flops
        >>> model = nn.Sequential(nn.Linear(4, 3))
        >>> sorted((k, sum(v.values())) for k, v in module_flops(
        ...     model, torch.zeros(2, 4)).items())  # the root and its child
        [('', 48), ('0', 48)]
    """
    forward = model if forward is None else forward
    counter = FlopCounterMode(display=False, custom_mapping=custom_mapping)
    with counter, torch.no_grad():
        forward(inputs)
    # Keys are 'Global' and '<root class>.<dotted module name>'.
    return {
        key.split('.', 1)[1] if '.' in key else '': dict(ops)
        for key, ops in counter.get_flop_counts().items()
    }


def count_macs(model: nn.Module,
               inputs: Tensor,
               forward: Optional[Callable] = None) -> Dict[str, float]:
    """MACs (not FLOPs) per conv/linear layer name, counted by
    ``FlopCounterMode`` (FLOPs / 2) in one forward pass.

    Args:
        model (nn.Module): The model.
        inputs (Tensor): One input batch.
        forward (callable, optional): How to call the model on ``inputs``.
            Default: ``model(inputs)``.

    Returns:
        dict[str, float]: MACs per conv / linear layer name.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from mmdynopool.engine.gmacs import count_macs
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
        >>> count_macs(model, torch.zeros(1, 3, 4, 4))  # 4*4*8 outputs x 27
        {'0': 3456.0}
    """
    names = {n for n, m in model.named_modules() if isinstance(m, _COUNTED)}
    return {
        name: sum(ops.values()) / 2
        for name, ops in module_flops(model, inputs, forward).items()
        if name in names
    }


class GMACsCounter:
    """The GMACs of Eq. (7) as a differentiable function of the alphas.

    Args:
        model (nn.Module): The whole model (backbone, neck, head).
        input_size (Sequence[int]): ``(H, W)`` of the reference input.
        in_channels (int): Channels of the reference input. Default: 3.
        forward (callable, optional): How to run the model on a tensor,
            e.g. ``lambda x: model(x, mode='tensor')``. Default: ``model``.

    Example:
        >>> import torch
        >>> from mmdynopool.engine import GMACsCounter
        >>> from mmdynopool.models import DynOPoolVGG
        >>> model = DynOPoolVGG(11, out_indices=(4, ))
        >>> counter = GMACsCounter(model, (32, 32))
        >>> round(counter.initial_gmacs, 4)
        0.1528
        >>> with counter.recording():
        ...     _ = model(torch.rand(2, 3, 32, 32))
        >>> round(counter.loss().item(), 4)
        0.1528
    """

    def __init__(self,
                 model: nn.Module,
                 input_size: Sequence[int],
                 in_channels: int = 3,
                 forward: Optional[Callable] = None) -> None:
        self.model = model
        self.forward = model if forward is None else forward
        self.input_size = tuple(int(v) for v in input_size)
        self.in_channels = int(in_channels)
        param = next(model.parameters())
        x = torch.zeros(
            1,
            in_channels,
            *input_size,
            device=param.device,
            dtype=param.dtype)
        pools = [m for m in model.modules() if isinstance(m, DynOPool2d)]
        with eval_mode(model):
            base = self._probe(x, pools)
            macs = count_macs(model, x, self.forward)
            deps = {}  # name -> set of pools its size depends on
            with torch.no_grad():
                for p in pools:
                    saved = p.alpha.detach().clone()
                    p.alpha.div_(_PERTURB)
                    try:
                        sizes = self._probe(x, pools)
                    finally:
                        p.alpha.copy_(saved)
                    for key, size in sizes.items():
                        if size != base.get(key):
                            deps.setdefault(key, set()).add(p)
        self.pools = sorted((p for p in pools if ('pool', id(p)) in base),
                            key=lambda p: base[('order', id(p))])
        order = {id(p): i for i, p in enumerate(self.pools)}

        def governor(key):
            found = deps.get(key, ())
            return max(found, key=lambda p: order[id(p)]) if found else None

        # Upstream pool of each pool's input, and the initial sizes.
        self.upstream = {id(p): governor(('in', id(p))) for p in self.pools}
        self.in0 = {id(p): base[('in', id(p))] for p in self.pools}
        self.out0 = {id(p): base[('pool', id(p))] for p in self.pools}
        # Constants of loss(), per pool: its initial input size over its
        # upstream pool's initial output, and the initial output area.
        self._in_per_up = {
            id(p):
            tuple(i / o for i, o in zip(self.in0[id(p)], self.out0[id(
                self.upstream[id(p)])]))
            for p in self.pools if self.upstream[id(p)] is not None
        }
        self._area0 = {k: float(h * w) for k, (h, w) in self.out0.items()}
        # GMACs grouped by governing pool (None: constant, e.g. the stem).
        self.groups: Dict[Optional[int], float] = {}
        for name, m in macs.items():
            g = governor(name)
            key = id(g) if g is not None else None
            self.groups[key] = self.groups.get(key, 0.0) + m / 1e9
        self.num_layers = len(macs)
        self._seen: Dict[int, Tuple[int, int]] = {}
        self._handles: List = []

    @property
    def initial_gmacs(self) -> float:
        """``sum_l GMACs_0[l]`` over the conv / linear layers."""
        return sum(self.groups.values())

    def _probe(self, x: Tensor, pools: List[DynOPool2d]) -> dict:
        """Sizes of every conv/linear output and DynOPool input/output."""
        sizes, handles = {}, []

        def layer_hook(name):

            def hook(m, args, out):
                sizes.setdefault(name, tuple(out.shape[2:]))

            return hook

        def pool_hook(p):

            def hook(m, args, out):
                key = ('pool', id(p))
                if key not in sizes:
                    sizes[key] = tuple(out.shape[-2:])
                    sizes[('in', id(p))] = tuple(args[0].shape[-2:])
                    sizes[('order', id(p))] = len(sizes)

            return hook

        for name, m in self.model.named_modules():
            if isinstance(m, _COUNTED):
                handles.append(m.register_forward_hook(layer_hook(name)))
        handles += [p.register_forward_hook(pool_hook(p)) for p in pools]
        try:
            with torch.no_grad():
                self.forward(x)
        finally:
            for h in handles:
                h.remove()
        return sizes

    def recording(self) -> '_Recording':
        """Context manager that records every DynOPool's real input size
        during a forward pass, for :meth:`loss`.

        Returns:
            context manager: Records while entered.
        """
        return _Recording(self)

    def attach(self) -> None:
        """Record input sizes on every forward from now on."""
        if self._handles:
            return

        def pre_hook(p):

            def hook(m, args):
                self._seen.setdefault(id(p), tuple(args[0].shape[-2:]))

            return hook

        self._handles = [
            p.register_forward_pre_hook(pre_hook(p)) for p in self.pools
        ]

    def reset(self) -> None:
        """Forget the recorded sizes (call at the start of a forward)."""
        self._seen = {}

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def loss(self) -> Tensor:
        """``L_GMACs`` of the last recorded forward (sizes read there),
        then clears the record. Value: real integer sizes; gradient: the
        straight-through sizes, chained through upstream DynOPools. Device
        arithmetic only: no value is read back to the host.

        Returns:
            Tensor: ``L_GMACs`` of one image, a 0-d device tensor.
        """
        out_ste: Dict[int, Tensor] = {}
        for p in self.pools:
            real_in = self._seen.get(id(p), self.in0[id(p)])
            out = dynopool_output_size(real_in, p.alpha)
            up = self.upstream[id(p)]
            if up is not None:
                # The input size's straight-through part, zero in value:
                # its gradient reaches the upstream alphas.
                c_h, c_w = self._in_per_up[id(p)]
                up_out = out_ste[id(up)]
                cont_in = torch.stack([c_h * up_out[0], c_w * up_out[1]])
                out = out + (cont_in - cont_in.detach()) / p.alpha
            out_ste[id(p)] = out
        self._seen = {}
        total = 0.0
        for key, gmacs in self.groups.items():
            if key is None:
                total = total + gmacs
                continue
            ratio = out_ste[key].prod() / self._area0[key]
            total = total + ratio * gmacs
        if not isinstance(total, Tensor):
            total = torch.tensor(total)
        return total.to(torch.float32)

    def continuous_gmacs(self) -> Tensor:
        """The GMACs of Eq. (7) at the continuous sizes ``H_in / alpha``
        (chained from ``input_size``, no rounding), detached: a smooth
        measure of where the alphas are, for a controller to follow between
        the steps of the integer cost. Device arithmetic only.

        Returns:
            Tensor: GMACs of one image, a 0-d device tensor.
        """
        cont: Dict[int, Tensor] = {}
        with torch.no_grad():
            for p in self.pools:
                a = p.alpha.detach().double()
                up = self.upstream[id(p)]
                if up is None:
                    h, w = self.in0[id(p)]
                    cont[id(p)] = torch.stack([h / a[0], w / a[1]])
                else:
                    c_h, c_w = self._in_per_up[id(p)]
                    u = cont[id(up)]
                    cont[id(p)] = torch.stack(
                        [c_h * u[0] / a[0], c_w * u[1] / a[1]])
            total = 0.0
            for key, gmacs in self.groups.items():
                if key is None:
                    total = total + gmacs
                else:
                    total = total + cont[key].prod() / self._area0[key] * gmacs
        if not isinstance(total, Tensor):
            total = torch.tensor(total)
        return total.to(torch.float32)


class _Recording:

    def __init__(self, counter: GMACsCounter) -> None:
        self.counter = counter

    def __enter__(self) -> GMACsCounter:
        self.counter.attach()
        return self.counter

    def __exit__(self, *exc) -> None:
        self.counter.detach()
