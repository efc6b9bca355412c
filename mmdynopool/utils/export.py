"""Export a trained model in its deployment form (``torch.export`` / ONNX).

:func:`export_model` builds a config's model with a checkpoint's learned
alphas, switches every resizing layer to its deployment form
(:func:`mmdynopool.models.resizing.switch_to_deploy`: sizes as integer
expressions of the input size, plain ATen ops), exports ``model(x,
mode='tensor')`` with a dynamic input height and width, and checks the
export against eager at the example size and at a second one (ONNX: in
onnxruntime).
"""
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
from torch import nn

__all__ = ['export_model', 'FORMATS', 'TensorForward']

FORMATS = ('onnx', 'export')


class TensorForward(nn.Module):
    """``model(x, mode='tensor')`` as a plain module: what exporters see
    (mmengine models take a mode; a backbone is called as it is).

    Args:
        model (nn.Module): An mmengine model (called with ``mode='tensor'``) or
            a plain module.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._mode = 'data_preprocessor' in dict(model.named_children())

    def forward(self, x: torch.Tensor):
        return self.model(x, mode='tensor') if self._mode else self.model(x)


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flat(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _flat(o)]
    raise TypeError(f'cannot compare an output of type {type(out).__name__}')


def _rel_error(got, expected) -> float:
    """Max ``|got - expected|`` over max ``|expected|``, over all outputs."""
    worst = 0.0
    for g, e in zip(got, expected):
        g = torch.as_tensor(g).float()
        scale = max(float(e.abs().max()), 1e-12)
        worst = max(worst, float((g - e.float()).abs().max()) / scale)
    return worst


def export_model(model: nn.Module,
                 out_file: str,
                 input_size: Sequence[int],
                 fmt: str = 'onnx',
                 in_channels: int = 3,
                 dynamic: bool = True,
                 check_size: Optional[Sequence[int]] = None) -> Dict:
    """Export ``model`` in its deployment form and check it against eager.

    Args:
        model (nn.Module): A model or backbone (switched to deployment form
            and eval mode here, in place).
        out_file (str): ``.onnx`` (``fmt='onnx'``) or ``.pt2``
            (``fmt='export'``, ``torch.export.save``).
        input_size (Sequence[int]): ``(H, W)`` of the example input.
        fmt (str): ``'onnx'`` (the current, ``torch.export``-based ONNX
            exporter) or ``'export'``. Default: ``'onnx'``.
        in_channels (int): Input channels. Default: 3.
        dynamic (bool): Dynamic input height and width. Default: True.
        check_size (Sequence[int], optional): A second input size to check
            (dynamic exports). Default: ``input_size`` plus 1/4 along each
            axis.

    Returns:
        dict: ``file``, ``format``, ``switched`` (resizing layers), and
        ``max_rel_error`` per checked size (max absolute difference over max
        absolute eager value; ONNX run in onnxruntime).
    """
    from ..models.resizing import switch_to_deploy
    if fmt not in FORMATS:
        raise ValueError(f'fmt must be one of {FORMATS}, got {fmt!r}')
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f'input_size must be (H, W), got {input_size!r}')
    suffix = '.onnx' if fmt == 'onnx' else '.pt2'
    if not str(out_file).endswith(suffix):
        raise ValueError(f'out_file must end with {suffix!r} for '
                         f'fmt={fmt!r}, got {out_file!r}')
    switched = switch_to_deploy(model)
    model.eval()
    net = TensorForward(model).eval()
    param = next(model.parameters())
    example = torch.randn(
        1, in_channels, *input_size, dtype=param.dtype, device=param.device)
    sizes = [tuple(input_size)]
    if dynamic:
        sizes.append(
            tuple(check_size) if check_size else tuple(v + max(1, v // 4)
                                                       for v in input_size))
    shapes = None
    if dynamic:
        h = torch.export.Dim('height', min=2, max=16384)
        w = torch.export.Dim('width', min=2, max=16384)
        shapes = {'x': {2: h, 3: w}}
    errors = {}
    with torch.no_grad():
        if fmt == 'export':
            program = torch.export.export(
                net, (example, ), dynamic_shapes=shapes)
            torch.export.save(program, out_file)
            program = torch.export.load(out_file)
            run = program.module()
        else:
            torch.onnx.export(
                net, (example, ),
                out_file,
                dynamo=True,
                dynamic_shapes=shapes,
                input_names=['x'],
                verbose=False)
            import onnxruntime as ort
            session = ort.InferenceSession(
                out_file, providers=['CPUExecutionProvider'])

            def run(x):
                return session.run(None, {'x': x.cpu().numpy()})

        for size in sizes:
            x = torch.randn(
                1, in_channels, *size, dtype=param.dtype, device=param.device)
            expected = _flat(net(x))
            got = _flat(run(x)) if fmt == 'export' else run(x)
            if [tuple(g.shape)
                    for g in got] != [tuple(e.shape) for e in expected]:
                raise RuntimeError(
                    f'the export gives shapes {[g.shape for g in got]} at '
                    f'{size}, eager {[tuple(e.shape) for e in expected]}')
            errors[f'{size[0]}x{size[1]}'] = _rel_error(got, expected)
    return dict(
        file=osp.abspath(out_file),
        format=fmt,
        switched=switched,
        max_rel_error=errors)
