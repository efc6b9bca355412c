"""The study harnesses of tools/repro/ import each other by name (their
commands put the folder on sys.path): so do the tests."""
import os.path as osp
import sys

REPRO = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
    'repro')
if REPRO not in sys.path:
    sys.path.insert(0, REPRO)
