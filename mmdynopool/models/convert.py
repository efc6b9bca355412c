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
``dynopools`` ``ModuleList`` on the model.
"""
import operator
from typing import Dict, List, Sequence

import torch
from torch import nn

from .layers import DynOPool2d, PoolAfter, PooledConv2d
from .resizing import is_strided, resizer_scale, stride_of

__all__ = ['convert_to_dynopool']

_MERGE_OPS = {operator.add, operator.iadd, operator.mul, operator.imul,
              torch.add, torch.mul, torch.cat, torch.stack}
_MERGE_METHODS = {'add', 'add_', 'mul', 'mul_'}


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
        is_merge = (node.op == 'call_function' and node.target in _MERGE_OPS
                    or node.op == 'call_method'
                    and node.target in _MERGE_METHODS)
        if is_merge and len(merged) > 1:
            first, *rest = sorted(merged)
            for other in rest:
                parent[find(other)] = find(first)
    groups: Dict[str, List[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _changes_size(m: nn.Module) -> bool:
    """Whether rule B (DynOPool at ``1 / stride``, then the layer at stride
    1) changes the output size beyond DynOPool's own rounding: a conv whose
    stride-1 version is not "same"-padded (``2 p != d (k - 1)``), e.g. a
    patchify conv (kernel == stride, no padding). Pools become identity and
    never do."""
    if not isinstance(m, nn.Conv2d):
        return False
    if not isinstance(m.padding, tuple):  # 'valid' / 'same' strings
        return m.padding != 'same'
    return any(2 * p != d * (k - 1) for p, d, k in zip(
        m.padding, m.dilation, m.kernel_size))


def convert_to_dynopool(model: nn.Module,
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
            stride 1 give 56 - 3 = 53). Nothing is changed then; pass such
            layers in ``skip``. Pools and "same"-padded convs keep their
            sizes up to DynOPool's round-half-up (odd sizes at r = 0.5).

    Returns:
        list[dict]: One row per replaced layer: ``name``, ``type``,
        ``stride``, ``group`` (index into ``model.dynopools``).

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
    modules = dict(model.named_modules())
    unknown = [n for n in skip if n not in modules]
    if unknown:
        raise ValueError(f'skip names layers the model does not have: '
                         f'{unknown}')
    names = [n for n, m in modules.items()
             if is_strided(m) and n not in skip]
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
            'DynOPool would change feature-map sizes (these strided convs '
            'are not "same"-padded at stride 1, so DynOPool + the conv at '
            'stride 1 shrinks their output), so nothing was converted: ' +
            '; '.join(changed) + '. Leave them with skip=[...].')
    for group in groups:
        keys = {(seen.get(n), stride_of(modules[n])) for n in group}
        if len(keys) > 1:
            raise ValueError(
                f'layers {group} meet in one tensor but see different input '
                f'sizes or strides {sorted(keys, key=str)}; one DynOPool '
                'cannot replace them all (pass share=False)')

    cfg = dict(dynopool_cfg or {})
    user_mode = cfg.pop('mode', None)
    pools, rows = nn.ModuleList(), []
    for g, group in enumerate(groups):
        first = modules[group[0]]
        mode = 'avg' if isinstance(first, nn.AvgPool2d) else 'max'
        pool = DynOPool2d(
            init_scale=resizer_scale(first),
            mode=user_mode or mode, **cfg)
        pools.append(pool)
        for name in group:
            m = modules[name]
            parent_name, _, attr = name.rpartition('.')
            parent = model.get_submodule(parent_name)
            new = (PooledConv2d.from_conv(m, pool) if isinstance(
                m, nn.Conv2d) else PoolAfter(nn.Identity(), pool))
            setattr(parent, attr, new)  # also right for Sequential's '0'
            rows.append(
                dict(name=name, type=type(m).__name__, stride=stride_of(m),
                     group=g))
    model.add_module('dynopools', pools)
    return sorted(rows, key=lambda r: names.index(r['name']))
