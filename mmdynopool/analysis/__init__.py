from .complexity import GMACsCounter, count_macs
from .demo import run_demo
from .oracle import (classification_quality, combine_permutations,
                     efficiency_search, greedy_accumulation, oracle_summary,
                     plot_oracle, run_oracle)
from .report import (complexity_report, export_fixed_config,
                     format_complexity_report, plot_shapes)
from .shapes import format_resizing_report, resizing_report
from .sweep import (lambda_sweep, plot_tradeoff, run_experiment,
                    set_gmacs_loss_weight, set_input_resolution, write_rows)
from .toy_study import run_toy_studies

__all__ = [
    'resizing_report', 'format_resizing_report', 'GMACsCounter', 'count_macs',
    'complexity_report', 'format_complexity_report', 'plot_shapes',
    'export_fixed_config', 'run_experiment', 'lambda_sweep',
    'set_gmacs_loss_weight', 'set_input_resolution', 'plot_tradeoff',
    'write_rows', 'classification_quality', 'oracle_summary',
    'greedy_accumulation', 'combine_permutations', 'efficiency_search',
    'run_oracle', 'plot_oracle', 'run_demo', 'run_toy_studies'
]
