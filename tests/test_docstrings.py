"""Runs the ``>>>`` examples of every module of the package, one test per
module, so a failing example names its module; and checks that every public
function has Google-style ``Args:`` / ``Returns:`` sections."""
import ast
import doctest
import importlib
import importlib.util
import inspect
import os.path as osp
import pkgutil
import sys
import textwrap
from typing import List

import pytest
import torch

import mmdynopool

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(
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


# --- Google docstrings: Args: / Returns: on every public function ---------
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The study harnesses and tools whose public functions are checked too.
HARNESSES = ('toy_study', 'toy_report', 'toy_plots', 'toy_target',
             'toy_target_report', 'demo_runs')
TOOLS = ('tools/analysis/oracle.py', 'tools/analysis/lambda_sweep.py')
#: Known gaps, each with its reason; the list only shrinks.
PENDING = set()
SECTIONS = ('Returns:', 'Yields:')


def _params(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [
        p for p in sig.parameters.values()
        if p.name not in ('self', 'cls') and p.kind not in (p.VAR_POSITIONAL,
                                                            p.VAR_KEYWORD)
    ]


def _returns_value(fn) -> bool:
    """Whether ``fn``'s own body returns or yields a value."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    except (OSError, TypeError):
        return False

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                  ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(child, (ast.Return, ast.Yield, ast.YieldFrom)) \
                    and child.value is not None and not (
                        isinstance(child.value, ast.Constant)
                        and child.value.value is None):
                return True
            if walk(child):
                return True
        return False

    return walk(tree)


def _gaps(fn, name: str, doc: str) -> List[str]:
    gaps = []
    if _params(fn) and 'Args:' not in doc:
        gaps.append(f'{name}: no Args:')
    if _returns_value(fn) and not any(s in doc for s in SECTIONS):
        gaps.append(f'{name}: no Returns:')
    return gaps


def docstring_gaps(module, names=None) -> List[str]:
    """Public functions of ``module`` (its ``__all__``, or ``names``) and the
    public methods and constructors of its public classes whose docstring
    lacks ``Args:`` (it takes arguments) or ``Returns:`` / ``Yields:`` (it
    returns a value). Overrides (``forward``, hook methods, ...) are the
    base class's to document."""
    gaps = []
    for n in names if names is not None else getattr(module, '__all__', []):
        obj = getattr(module, n, None)
        if getattr(obj, '__module__', None) != module.__name__:
            continue
        qual = f'{module.__name__}.{n}'
        if inspect.isfunction(obj):
            gaps += _gaps(obj, qual, inspect.getdoc(obj) or '')
        elif inspect.isclass(obj):
            init = vars(obj).get('__init__')
            if init is not None and _params(init) and 'Args:' not in (
                (inspect.getdoc(obj) or '') + (init.__doc__ or '')):
                gaps.append(f'{qual}: no Args: (class)')
            for mname, m in vars(obj).items():
                if mname.startswith('_') or mname == 'forward' or \
                        not inspect.isfunction(m) or any(
                            mname in vars(b) for b in obj.__mro__[1:]):
                    continue
                gaps += _gaps(m, f'{qual}.{mname}', inspect.getdoc(m) or '')
    return [g for g in gaps if g.split(':')[0] not in PENDING]


@pytest.mark.parametrize('name', MODULES)
def test_public_functions_have_args_and_returns(name):
    assert docstring_gaps(importlib.import_module(name)) == []


@pytest.mark.parametrize('name', HARNESSES)
def test_harness_functions_have_args_and_returns(name):
    path = osp.join(ROOT, 'tools', 'repro')
    if path not in sys.path:
        sys.path.insert(0, path)
    assert docstring_gaps(importlib.import_module(name)) == []


@pytest.mark.parametrize('rel', TOOLS)
def test_tool_functions_have_args_and_returns(rel):
    spec = importlib.util.spec_from_file_location(
        'tool_' + osp.basename(rel)[:-3], osp.join(ROOT, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = [
        n for n, v in vars(module).items()
        if inspect.isfunction(v) and not n.startswith('_') and n not in (
            'main', 'parse_args')
    ]
    assert docstring_gaps(module, names) == []


def test_the_check_finds_a_gap():
    """A public function without Args: / Returns: is reported."""
    import types
    module = types.ModuleType('fake')

    def f(x):
        """Double ``x``."""
        return 2 * x

    def g(x):
        """Double ``x``.

        Args:
            x (float): A number.

        Returns:
            float: ``2 x``.
        """
        return 2 * x

    f.__module__ = g.__module__ = 'fake'
    module.f, module.g, module.__all__ = f, g, ['f', 'g']
    assert docstring_gaps(module) == [
        'fake.f: no Args:', 'fake.f: no Returns:'
    ]
