"""Runs the ``>>>`` examples of every module of the package, one test per
module, so a failing example names its module."""
import doctest
import importlib
import pkgutil

import pytest
import torch

import mmdynopool

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(
        mmdynopool.__path__, 'mmdynopool.'))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize('name', MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    torch.manual_seed(0)
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test, out=report.append)
    assert runner.failures == 0, ''.join(report)
