"""mmdynopool.analysis.parallel: run_parallel's order and dependencies, and
what runtime_record says."""
import operator
import os

import pytest
import torch

from mmdynopool.analysis.parallel import run_parallel, runtime_record


def chain(task, needed):
    """A task sees the result of the one it needs."""
    return (task, needed)


def test_run_parallel_in_process_dependencies():
    # Task 0 needs task 2, which runs first; results stay in task order.
    out = run_parallel(chain, ['a', 'b', 'c'], 1, needs=[2, None, None])
    assert out == [('a', ('c', None)), ('b', None), ('c', None)]
    with pytest.raises(ValueError, match='cycle'):
        run_parallel(chain, ['a', 'b'], 1, needs=[1, 0])
    with pytest.raises(ValueError, match=r'needs\[0\]'):
        run_parallel(chain, ['a'], 1, needs=[0])
    with pytest.raises(ValueError, match='one entry per task'):
        run_parallel(chain, ['a'], 1, needs=[None, None])
    with pytest.raises(ValueError, match='jobs'):
        run_parallel(chain, ['a'], 0)


def test_run_parallel_processes_pass_results_on():
    # operator.getitem pickles by name: task i maps the result it needs to
    # its own, so the chain 0 -> 1 -> 2 only completes if each result
    # reached the next process.
    tasks = [{None: 'x'}, {'x': 'y'}, {'y': 'z'}, {None: 'w'}]
    out = run_parallel(operator.getitem, tasks, 2, needs=[None, 0, 1, None])
    assert out == ['x', 'y', 'z', 'w']


def test_runtime_record(monkeypatch):
    before = torch.get_num_threads()
    try:
        rec = runtime_record(1)
        assert rec['threads'] == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert rec['torch'] == torch.__version__
    assert rec['dynopool_path'] in ('fused-cpu', 'generic')
    assert rec['MMDYNOPOOL_NO_EXT'] == os.environ.get('MMDYNOPOOL_NO_EXT')
    from mmdynopool.ops import fused_kernel
    assert (rec['dynopool_path'] == 'fused-cpu') == (
        fused_kernel() is not None)
