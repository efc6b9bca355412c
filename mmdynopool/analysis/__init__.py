from .complexity import GMACsCounter, count_macs
from .shapes import format_resizing_report, resizing_report

__all__ = [
    'resizing_report', 'format_resizing_report', 'GMACsCounter', 'count_macs'
]
