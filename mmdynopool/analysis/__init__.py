from .shapes import format_resizing_report, resizing_report

__all__ = ['resizing_report', 'format_resizing_report']
