"""Put DynOPool into any torch model (timm, torchvision, a user's own).

Every resizing layer except global pooling is replaced, as in the paper:

* ``MaxPool2d`` / ``AvgPool2d`` with stride ``s > 1`` -> DynOPool (``max`` /
  ``avg``) with initial scale ``1 / s``;
* ``Conv2d`` with stride ``s > 1`` -> the same convolution with stride 1 fed
  by a DynOPool of initial scale ``1 / s`` (``Conv_s -> Conv_1 o DynOPool``,
  rule C; the converter cannot know where a block's activation is, so it does
  not apply rule B).

Resizing layers whose outputs meet in a sum, product or concatenation (a
residual block's main path and shortcut, say) share one DynOPool, so the
branches always agree on the size. The meeting points come from a
``torch.fx`` trace; the model itself is modified in place, its module tree and
checkpoint keys untouched. The DynOPools are registered once, in a new
``dynopools`` ``ModuleList`` on the model (a pass-through when called, so an
``nn.Sequential``, which runs every child, still runs).

Only 2-D layers are converted; a strided 1-D / 3-D conv or pool, or an
``LPPool2d``, is named: an error when nothing else is left to convert, a
warning otherwise.
"""
import operator
import warnings
from typing import Dict, List, Sequence

import torch
from torch import Tensor, nn

from .layers import DynOPool2d, PoolAfter, PooledConv2d
from .resizing import is_strided, resizer_scale, stride_of

__all__ = ['convert_to_dynopool', 'DynOPoolList']

_MERGE_OPS = {
    operator.add, operator.iadd, operator.mul, operator.imul, torch.add,
    torch.mul, torch.cat, torch.stack
}
_MERGE_METHODS = {'add', 'add_', 'mul', 'mul_'}

#: Resizing layers the converter does not convert (it is 2-D, DynOPool2d).
_OTHER_RESIZERS = (nn.Conv1d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool3d,
                   nn.AvgPool1d, nn.AvgPool3d, nn.LPPool1d, nn.LPPool2d)


class DynOPoolList(nn.ModuleList):
    """The converter's ``dynopools``: a ``ModuleList`` that returns its
    input when called. The pools run where the converted layers call them;
    this only keeps a model that runs every child in turn
    (``nn.Sequential``) running, instead of torch's ``NotImplementedError``
    for a called ``ModuleList``."""

    def forward(self, x: Tensor) -> Tensor:
        return x


def _other_strided(m: nn.Module) -> bool:
    """A strided layer of a kind the converter leaves (1-D / 3-D, LPPool)."""
    if not isinstance(m, _OTHER_RESIZERS):
        return False
    s = m.stride if m.stride is not None else m.kernel_size  # LPPool
    return any(v != 1 for v in (s if isinstance(s, (tuple, list)) else (s, )))


def _share_groups(model: nn.Module, names: Sequence[str]) -> List[List[str]]:
    """Union-find over resizing layers whose outputs meet at a merge op."""
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as e:  # noqa: BLE001 - fx raises many types
        raise RuntimeError(
            'convert_to_dynopool could not trace the model with torch.fx to '
            'find which resizing layers must share a scale; pass '
            f'share=False to give every layer its own. ({e})') from e
    parent = {n: n for n in names}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    # Nearest upstream resizing layers of every node, in topological order.
    upstream: Dict[torch.fx.Node, frozenset] = {}
    for node in graph.nodes:
        if node.op == 'call_module' and node.target in parent:
            upstream[node] = frozenset([node.target])
            continue
        inputs = [a for a in node.all_input_nodes if a in upstream]
        sets = [upstream[a] for a in inputs]
        merged = frozenset().union(*sets) if sets else frozenset()
        upstream[node] = merged
        is_merge = (
            node.op == 'call_function' and node.target in _MERGE_OPS
            or node.op == 'call_method' and node.target in _MERGE_METHODS)
        if is_merge and len(merged) > 1:
            first, *rest = sorted(merged)
            for other in rest:
                parent[find(other)] = find(first)
    groups: Dict[str, List[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _changes_size(m: nn.Module) -> bool:
    """Whether the replacement changes the output size beyond DynOPool's
    own rounding.

    * A conv becomes DynOPool at ``1 / stride``, then the conv at stride 1
      (rule B): it does when the stride-1 conv is not "same"-padded
      (``2 p != d (k - 1)``), e.g. a patchify conv (kernel == stride, no
      padding).
    * A pool becomes DynOPool alone, whose size is ``H / s`` on a multiple
      of its stride: it does when the pool maps ``s m`` to anything else,
      e.g. ``MaxPool2d(3, 2)`` without padding (8 -> 3, DynOPool 4).
    """
    if isinstance(m, nn.Conv2d):
        if not isinstance(m.padding, tuple):  # 'valid' / 'same' strings
            return m.padding != 'same'
        return any(2 * p != d * (k - 1)
                   for p, d, k in zip(m.padding, m.dilation, m.kernel_size))
    sh, sw = stride_of(m)
    k = m.kernel_size if isinstance(m.kernel_size, int) else max(m.kernel_size)
    # Two multiples of the stride, both larger than the window.
    size = (k + 2, k + 3)
    with torch.no_grad():
        out = m(torch.zeros(1, 1, sh * size[0], sw * size[1]))
    out = out[0] if isinstance(out, tuple) else out  # return_indices
    return tuple(out.shape[-2:]) != size


def convert_to_dynopool(
    model: nn.Module,
    share: bool = True,
    example_input: torch.Tensor = None,
    dynopool_cfg: dict = None,
    skip: Sequence[str] = ()) -> List[dict]:
    """Replace ``model``'s resizing layers by DynOPool, in place.

    Args:
        model (nn.Module): Any model.
        share (bool): Share one DynOPool between layers whose outputs meet
            (needs a ``torch.fx`` trace). Default: True.
        example_input (Tensor, optional): An input used to check that the
            layers of a group see the same size and stride. Default: a
            ``(1, 3, 64, 64)`` tensor.
        dynopool_cfg (dict, optional): Extra ``DynOPool2d`` arguments
            (``fixed``, ``mode``, ``position_grad``). Default ``mode``:
            ``'avg'`` for an average pool, ``'max'`` otherwise.
        skip (Sequence[str]): Names of strided layers to leave as they are.

    Raises:
        ValueError: for a strided conv that is not "same"-padded at stride
            1 (``2 padding != dilation (kernel - 1)``): rule B would shrink
            its output beyond DynOPool's rounding, e.g. a patchify conv
            (4x4 / s4 on 224 gives 56; DynOPool 0.25 and the 4x4 conv at
            stride 1 give 56 - 3 = 53); and for a pool that does not map a
            multiple ``s m`` of its stride to ``m`` (``MaxPool2d(3, 2)``
            without padding: 8 -> 3, DynOPool 4). Nothing is changed then;
            pass such layers in ``skip``. The others keep their sizes up to
            DynOPool's round-half-up (odd sizes at r = 0.5). Also a
            ValueError when the only strided layers are ones it does not
            convert (1-D / 3-D, ``LPPool2d``; a warning names them when
            others are converted), and when ``model`` already has a
            ``dynopools`` attribute (converted already).

    Returns:
        list[dict]: One row per replaced layer, and per name of a layer
        registered under several (all of which get the replacement):
        ``name``, ``type``, ``stride``, ``group`` (index into
        ``model.dynopools``).

    Example:
        >>> import torchvision
        >>> net = torchvision.models.resnet18()
        >>> rows = convert_to_dynopool(net)
        >>> len(rows), len(net.dynopools)
        (8, 5)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f'model must be an nn.Module, got '
                        f'{type(model).__name__}')
    if isinstance(skip, str) or not all(isinstance(n, str) for n in skip):
        raise TypeError(f'skip must be a sequence of layer names, got '
                        f'{skip!r}')
    if hasattr(model, 'dynopools'):
        raise ValueError(f'{type(model).__name__} already has a dynopools '
                         'attribute (converted already, or a resizing '
                         'backbone): convert a model without one')
    # A module registered under several names is one module: it is found
    # (and traced) under its first name and replaced under every name.
    aliases: Dict[int, List[str]] = {}
    for n, m in model.named_modules(remove_duplicate=False):
        aliases.setdefault(id(m), []).append(n)
    order = {
        n: i
        for i, n in enumerate(n for ns in aliases.values() for n in ns)
    }
    unknown = [n for n in skip if n not in order]
    if unknown:
        raise ValueError(f'skip names layers the model does not have: '
                         f'{unknown}')
    modules = dict(model.named_modules())
    skipped = {id(model.get_submodule(n)) for n in skip}
    names = [
        n for n, m in modules.items() if is_strided(m) and id(m) not in skipped
    ]
    others = [
        f'{n}: {type(m).__name__} stride {m.stride}'
        for n, m in modules.items()
        if _other_strided(m) and id(m) not in skipped
    ]
    if others and not names:
        raise ValueError(
            f'the strided layers of {type(model).__name__} ('
            f'{"; ".join(others)}) are not 2-D max / average pools or '
            'Conv2d, the only ones convert_to_dynopool converts: nothing '
            'to convert (leave them with skip=[...] to get no error)')
    if others:
        warnings.warn(f'{"; ".join(others)}: left as they are '
                      '(convert_to_dynopool converts 2-D max / average '
                      'pools and Conv2d only)')
    if not names:
        return []
    groups = _share_groups(model, names) if share else [[n] for n in names]

    # Each group must see one input size and stride for one alpha to fit.
    seen: Dict[str, tuple] = {}
    outputs: Dict[str, tuple] = {}

    def record(name):

        def hook(module, args, out):
            seen.setdefault(name, tuple(args[0].shape[-2:]))
            outputs.setdefault(name, tuple(out.shape[-2:]))

        return hook

    hooks = [modules[n].register_forward_hook(record(n)) for n in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = example_input if example_input is not None else torch.zeros(
                1, 3, 64, 64)
            param = next(model.parameters(), None)
            model(x if param is None else x.to(param.device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    changed = []
    for n in names:
        if n in seen and _changes_size(modules[n]):
            m = modules[n]
            changed.append(f'{n}: {type(m).__name__} kernel '
                           f'{m.kernel_size}, stride {m.stride}, padding '
                           f'{m.padding}, {seen[n]} -> {outputs[n]}')
    if changed:
        raise ValueError(
            'DynOPool would change feature-map sizes (a strided conv becomes '
            'DynOPool + the conv at stride 1, which shrinks the output '
            'unless "same"-padded; a pool becomes DynOPool alone, H / s, '
            'where these pools give another size), so nothing was '
            'converted: ' + '; '.join(changed) +
            '. Leave them with skip=[...].')
    for group in groups:
        keys = {(seen.get(n), stride_of(modules[n])) for n in group}
        if len(keys) > 1:
            raise ValueError(
                f'layers {group} meet in one tensor but see different input '
                f'sizes or strides {sorted(keys, key=str)}; one DynOPool '
                'cannot replace them all (pass share=False)')

    cfg = dict(dynopool_cfg or {})
    user_mode = cfg.pop('mode', None)
    pools, rows = DynOPoolList(), []
    for g, group in enumerate(groups):
        first = modules[group[0]]
        mode = 'avg' if isinstance(first, nn.AvgPool2d) else 'max'
        pool = DynOPool2d(
            init_scale=resizer_scale(first), mode=user_mode or mode, **cfg)
        pools.append(pool)
        for name in group:
            m = modules[name]
            new = (
                PooledConv2d.from_conv(m, pool) if isinstance(m, nn.Conv2d)
                else PoolAfter(nn.Identity(), pool))
            for alias in aliases[id(m)]:
                parent_name, _, attr = alias.rpartition('.')
                parent = model.get_submodule(parent_name)
                setattr(parent, attr, new)  # also right for Sequential's '0'
                rows.append(
                    dict(
                        name=alias,
                        type=type(m).__name__,
                        stride=stride_of(m),
                        group=g))
    model.add_module('dynopools', pools)
    return sorted(rows, key=lambda r: order[r['name']])
