"""tools/repro/toy_studies.py on a tiny setting (1 seed, a few iterations)."""
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'toy_studies', osp.join(ROOT, 'tools', 'repro', 'toy_studies.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_toy_studies_tiny(tmp_path):
    tool = load_tool()
    work = str(tmp_path / 'toy')
    md = tool.main([
        '--work-dir', work, '--seeds', '0', '--datasets', 'plain',
        'stretch-v', '--epochs', '1', '--num-train', '20', '--num-val', '10',
        '--cfg-options', 'train_dataloader.batch_size=10', 'log_level=WARNING'
    ])
    with open(osp.join(work, 'toy_studies.json')) as f:
        out = json.load(f)
    runs = {(r['dataset'], r['model']): r for r in out['runs']}
    assert sorted(runs) == [('plain', 'dynopool'), ('plain', 'human'),
                            ('plain', 'shape-adaptor'),
                            ('stretch-v', 'dynopool'), ('stretch-v', 'human')]
    for r in runs.values():
        assert 0 <= r['value'] <= 100 and r['seed'] == 0
        assert r['input_size'] == [32, 32]
    human = runs['plain', 'human']
    assert human['resolutions'] == [[32, 32], [16, 16], [8, 8], [4, 4],
                                    [2, 2]]
    # Shape Adaptor starts from much larger feature maps (Eq. 5: D_out = 8).
    assert runs['plain', 'shape-adaptor']['resolutions'][-1] == [8, 8]
    assert runs['plain', 'shape-adaptor']['gmacs'] > 3 * human['gmacs']
    assert out['settings']['epochs'] == 1
    assert [s['model'] for s in out['summary']] == [
        'human', 'dynopool', 'human', 'dynopool', 'shape-adaptor']

    with open(md) as f:
        table = f.read()
    lines = [line for line in table.splitlines() if line.startswith('| ')]
    assert len(lines) == 1 + 5  # header + one row per (dataset, model)
    row = next(line for line in lines if 'plain 32px | human' in line)
    assert f'{human["value"]:.2f} ± 0.00' in row
    assert f'{human["gmacs"] * 1e3:.2f} ± 0.00' in row
    assert '16x16 8x8 4x4 2x2' in row
    assert osp.isfile(osp.join(work, 'toy_shapes.png'))


def test_toy_studies_rejects_bad_arguments(capsys):
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args(['--epochs', '0'])
    assert '--epochs must be >= 1, got 0' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['--datasets', 'mnist'])
    assert "invalid choice: 'mnist'" in capsys.readouterr().err
