"""Measuring and plotting models, one module per job.

``complexity`` (GMACs, parameters, resizing cost), ``shapes`` (learned-shape
reports), ``plots`` (figures of those measurements) and ``oracle``
(Untapped Potential's oracle evaluation and the cost of each permutation).
The GMACs counting the loss uses lives in :mod:`mmdynopool.engine.gmacs`.

``experiments`` (train a config and measure it), ``parallel`` (runs in
worker processes) and ``stats`` (paired statistics) serve the study
harnesses of ``tools/repro/`` and are not part of ``__all__``.
"""
from ..engine.gmacs import GMACsCounter, count_macs
from .complexity import (complexity_report, config_complexity,
                         exact_config_gmacs, format_complexity_report)
from .oracle import (classification_quality, combine_permutations,
                     efficiency_search, efficiency_summary,
                     greedy_accumulation, oracle_summary, permutation_macs,
                     ranked_permutations, run_oracle)
from .plots import plot_learned_shapes, plot_oracle, plot_shapes, plot_tradeoff
from .shapes import feature_map_sizes, format_resizing_report, resizing_report

__all__ = [
    'GMACsCounter', 'count_macs', 'complexity_report', 'config_complexity',
    'exact_config_gmacs', 'format_complexity_report', 'classification_quality',
    'ranked_permutations', 'oracle_summary', 'greedy_accumulation',
    'combine_permutations', 'efficiency_search', 'efficiency_summary',
    'permutation_macs', 'run_oracle', 'plot_shapes', 'plot_learned_shapes',
    'plot_tradeoff', 'plot_oracle', 'resizing_report',
    'format_resizing_report', 'feature_map_sizes'
]
