from .complexity import GMACsCounter, count_macs
from .report import (complexity_report, export_fixed_config,
                     format_complexity_report, plot_shapes)
from .shapes import format_resizing_report, resizing_report

__all__ = [
    'resizing_report', 'format_resizing_report', 'GMACsCounter', 'count_macs',
    'complexity_report', 'format_complexity_report', 'plot_shapes',
    'export_fixed_config'
]
