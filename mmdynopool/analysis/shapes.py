"""Learned-shape reports: what a model's resizing layers do to one input.

:func:`resizing_report` (:mod:`mmdynopool.utils.inspection`, shared with
:class:`~mmdynopool.engine.ShapeLoggingHook`) runs one forward pass and lists
every resizing layer (DynOPool, Shape Adaptor, strided pooling and
convolution) with its current scale and the sizes it maps, plus the size of
every feature map the model returns. Here it becomes text
(:func:`format_resizing_report`) and the paper's "feature map sizes" column
(:func:`feature_map_sizes`).
"""
from typing import Dict, List, Sequence, Tuple

from ..utils.inspection import resizing_report

__all__ = [
    'resizing_report', 'format_resizing_report', 'format_layer_row',
    'feature_map_sizes'
]


def format_layer_row(row: Dict) -> str:
    """One :func:`resizing_report` layer row as a fixed-width text line.

    Args:
        row (dict): One of ``report['layers']``.

    Returns:
        str: The line.

    Example:
        >>> from mmdynopool.analysis.shapes import format_layer_row
        >>> line = format_layer_row(dict(
        ...     name='features.1', type='DynOPool2d', scale=(0.5, 0.25),
        ...     out=(16, 8), **{'in': (32, 32)}))
        >>> line.split()[:4]
        ['features.1', 'DynOPool2d', '(0.500,', '0.250)']
        >>> line[40:54]
        'DynOPool2d    '
    """
    scale = '({:.3f}, {:.3f})'.format(*row['scale'])
    return (f'{row["name"]:<40}{row["type"]:<14}{scale:<18}'
            f'{str(row["in"]):<12}{row["out"]}')


def format_resizing_report(report: Dict[str, list]) -> str:
    """A plain-text table of :func:`resizing_report`'s result.

    Args:
        report (dict): :func:`resizing_report`'s result.

    Returns:
        str: The table.
    """
    lines = [f'{"layer":<40}{"type":<14}{"scale (h, w)":<18}{"in":<12}out']
    lines += [format_layer_row(r) for r in report['layers']]
    lines.append('outputs: ' + ', '.join(f'{h}x{w}'
                                         for h, w in report['outputs']))
    return '\n'.join(lines)


def feature_map_sizes(report: Dict[str, list],
                      input_size: Sequence[int]) -> List[Tuple[int, int]]:
    """The input size, then each distinct size a resizing layer of
    ``report`` produces, in call order: the paper's "feature map sizes".

    Args:
        report (dict): :func:`resizing_report`'s result.
        input_size (Sequence[int]): ``(H, W)`` the report was made at.

    Returns:
        list[tuple]: ``(H, W)`` sizes, the input's first.

    Example:
        >>> from mmdynopool.analysis.shapes import feature_map_sizes
        >>> rows = [dict(out=(16, 16)), dict(out=(8, 8)), dict(out=(16, 16))]
        >>> feature_map_sizes(dict(layers=rows), (32, 32))
        [(32, 32), (16, 16), (8, 8)]
    """
    sizes = [tuple(input_size)]
    for row in report['layers']:
        if row['out'] not in sizes:
            sizes.append(row['out'])
    return sizes
