"""Many experiment runs in worker processes, and what each ran on.

:func:`run_parallel` runs tasks (usually one
:func:`~mmdynopool.analysis.run_experiment` each) in ``spawn``-ed worker
processes with a progress bar; a task may wait for another's result (a Fix
(Final) retrain for the run that learned its shape). :func:`runtime_record`
is what every study run records about its environment, because a seed alone
does not fix a run's numbers: the thread count and the DynOPool backend
change them too.
"""
import os
from typing import Callable, Dict, List, Optional, Sequence

__all__ = ['run_parallel', 'runtime_record']


def runtime_record(threads: Optional[int] = None) -> Dict:
    """What a run runs on, for its result: ``threads`` (torch intra-op
    threads, after setting them to ``threads`` when given),
    ``dynopool_path`` (``'fused-cpu'`` where the fused CPU kernel is loaded,
    else ``'generic'``: the PyTorch backend, what CUDA runs; the two give
    the same forward values and winners, gradients to float summation
    order), ``MMDYNOPOOL_NO_EXT`` (the environment
    variable, None when unset) and ``torch`` (version).

    Args:
        threads (int, optional): Torch intra-op threads to set first. Default:
            leave them.

    Returns:
        dict: ``threads``, ``dynopool_path``, ``MMDYNOPOOL_NO_EXT`` and
        ``torch``.
    """
    import torch

    from ..ops import fused_kernel
    if threads is not None:
        torch.set_num_threads(threads)
    return dict(
        threads=torch.get_num_threads(),
        dynopool_path='fused-cpu' if fused_kernel() is not None else 'generic',
        MMDYNOPOOL_NO_EXT=os.environ.get('MMDYNOPOOL_NO_EXT'),
        torch=torch.__version__)


def run_parallel(fn: Callable,
                 tasks: Sequence,
                 jobs: int = 1,
                 needs: Optional[Sequence[Optional[int]]] = None) -> List:
    """``fn(task, needed)`` for every task, in ``jobs`` worker processes
    (``spawn``: a fresh interpreter each, so no thread pools or registries
    are inherited), with a progress bar.

    Args:
        fn (callable): A module-level function (it is pickled by name)
            taking the task and the result of the task it needs (None when
            it needs none).
        tasks (Sequence): Picklable tasks.
        jobs (int): Processes; 1 runs in this process. Default: 1.
        needs (Sequence[int | None], optional): Per task, the index of the
            task whose result it needs; it starts once that one finished.
            Whenever a process is free, the first ready task in ``tasks``
            order starts, so a dependent placed early starts as soon as it
            can. Default: no dependencies.

    Returns:
        list: ``fn``'s results, in ``tasks`` order.
    """
    from mmengine.utils import ProgressBar
    n = len(tasks)
    needs = list(needs) if needs is not None else [None] * n
    if len(needs) != n:
        raise ValueError(f'needs must have one entry per task ({n}), got '
                         f'{len(needs)}')
    for i, j in enumerate(needs):
        if j is not None and not (0 <= j < n and j != i):
            raise ValueError(f'needs[{i}] must be another task index or '
                             f'None, got {j!r}')
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f'jobs must be an integer >= 1, got {jobs!r}')
    results, done, waiting = [None] * n, set(), list(range(n))

    def next_ready():
        for i in waiting:
            if needs[i] is None or needs[i] in done:
                waiting.remove(i)
                return i
        return None

    bar = ProgressBar(n)
    if jobs == 1:
        while waiting:
            i = next_ready()
            if i is None:
                raise ValueError('needs has a cycle among tasks '
                                 f'{sorted(waiting)}')
            dep = None if needs[i] is None else results[needs[i]]
            results[i] = fn(tasks[i], dep)
            done.add(i)
            bar.update()
    else:
        import multiprocessing as mp
        from concurrent.futures import (FIRST_COMPLETED, ProcessPoolExecutor,
                                        wait)
        with ProcessPoolExecutor(
                jobs, mp_context=mp.get_context('spawn')) as pool:
            running = {}
            while waiting or running:
                while len(running) < jobs:
                    i = next_ready()
                    if i is None:
                        break
                    dep = None if needs[i] is None else results[needs[i]]
                    running[pool.submit(fn, tasks[i], dep)] = i
                if not running:
                    raise ValueError('needs has a cycle among tasks '
                                     f'{sorted(waiting)}')
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    results[i] = fut.result()
                    done.add(i)
                    bar.update()
    print()
    return results
