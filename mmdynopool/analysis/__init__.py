"""Measuring and plotting models, one module per job.

``complexity`` (GMACs, parameters, resizing cost), ``shapes`` (learned-shape
reports), ``plots`` (every figure), ``experiments`` (train-and-measure runs,
lambda sweeps), ``config_surgery`` (the config changes they make),
``oracle`` / ``oracle_study`` (Untapped Potential's oracle evaluation),
``toy_study`` / ``toy_report`` (the README's toy studies) and ``demo``.
The GMACs counting the loss uses lives in :mod:`mmdynopool.engine.gmacs`.
"""
from ..engine.gmacs import GMACsCounter, count_macs
from .complexity import (complexity_report, config_complexity,
                         format_complexity_report)
from .config_surgery import (export_fixed_config, export_fixed_config_file,
                             gmacs_loss_hook, set_gmacs_loss_weight,
                             set_input_resolution)
from .demo import run_demo
from .experiments import (format_sweep_rows, lambda_sweep, run_experiment,
                          run_lambda_sweep, write_rows)
from .oracle import (classification_quality, combine_permutations,
                     efficiency_search, greedy_accumulation, oracle_summary,
                     ranked_permutations, run_oracle)
from .oracle_study import format_oracle_summary, run_oracle_study
from .plots import (plot_learned_shapes, plot_oracle, plot_shapes, plot_sweep,
                    plot_tradeoff, plot_trajectories)
from .shapes import feature_map_sizes, format_resizing_report, resizing_report
from .toy_study import run_toy_studies

__all__ = [
    'resizing_report', 'format_resizing_report', 'GMACsCounter', 'count_macs',
    'complexity_report', 'format_complexity_report', 'plot_shapes',
    'export_fixed_config', 'run_experiment', 'lambda_sweep',
    'set_gmacs_loss_weight', 'set_input_resolution', 'plot_tradeoff',
    'write_rows', 'classification_quality', 'ranked_permutations',
    'oracle_summary',
    'greedy_accumulation', 'combine_permutations', 'efficiency_search',
    'run_oracle', 'plot_oracle', 'run_demo', 'run_toy_studies',
    'gmacs_loss_hook', 'feature_map_sizes', 'run_oracle_study',
    'format_oracle_summary', 'plot_trajectories', 'plot_sweep',
    'config_complexity', 'plot_learned_shapes', 'export_fixed_config_file',
    'run_lambda_sweep', 'format_sweep_rows'
]
