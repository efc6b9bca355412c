"""Checkpoints the user names: read safely, loaded strictly, resumed from
the newest readable one."""
import os
import pickle

import pytest
import torch
from torch import nn

from mmdynopool.models import DynOPool2d
from mmdynopool.utils import (load_strict, newest_loadable_checkpoint,
                              read_checkpoint, setup_distributed)


class Net(nn.Module):

    def __init__(self, channels=4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3)
        self.pool = DynOPool2d()


def save(model, path):
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), path)
    return str(path)


@pytest.mark.parametrize('content', [b'', b'\x00\x01garbage' * 10, 'half'])
def test_unreadable_files_are_named(tmp_path, content):
    path = tmp_path / 'bad.pth'
    if content == 'half':
        good = save(Net(), tmp_path / 'good.pth')
        content = open(good, 'rb').read()[:300]
    path.write_bytes(content)
    with pytest.raises(ValueError) as e:
        read_checkpoint(str(path))
    msg = str(e.value)
    assert str(path) in msg and 'cannot be read' in msg
    assert 'truncated, empty or not a PyTorch checkpoint' in msg
    assert 'allow-list' not in msg
    assert 'weights_only' not in msg  # no advice to trust the file


@pytest.mark.parametrize('protocol', [2, 4])
def test_malicious_pickle_is_refused(tmp_path, protocol):

    class Evil:

        def __reduce__(self):
            return (os.system, ('echo pwned > ' + str(tmp_path / 'x'), ))

    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump(dict(state_dict={}, evil=Evil()), f, protocol=protocol)
    with pytest.raises(ValueError, match='cannot be read') as e:
        read_checkpoint(str(path))
    msg = str(e.value)
    if protocol == 2:  # reaches the global: named as such
        assert 'outside the allow-list' in msg and 'system' in msg
    assert 'weights_only' not in msg  # no advice to trust the file
    assert not (tmp_path / 'x').exists()


def test_load_strict(tmp_path):
    src = Net()
    with torch.no_grad():
        src.pool.alpha.fill_(3.0)
    dst = Net()
    load_strict(dst, save(src, tmp_path / 'a.pth'))
    assert dst.pool.alpha.tolist() == [3.0, 3.0]
    # Another width: mis-shaped; another architecture: missing/unexpected.
    with pytest.raises(
            ValueError,
            match=r'mis-shaped keys: conv\.bias: '
            r'checkpoint \(8,\), model \(4,\)'):
        load_strict(Net(), save(Net(8), tmp_path / 'b.pth'))
    other = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(
            ValueError,
            match=r'missing keys: conv\.bias, '
            r'conv\.weight, pool\.alpha; unexpected keys: 0\.bias'):
        load_strict(Net(), save(other, tmp_path / 'c.pth'))
    # An alpha of the wrong shape.
    state = Net().state_dict()
    state['pool.alpha'] = torch.ones(3)
    torch.save(dict(state_dict=state), tmp_path / 'd.pth')
    with pytest.raises(ValueError, match=r'pool\.alpha: checkpoint \(3,\)'):
        load_strict(Net(), str(tmp_path / 'd.pth'))


def test_resume_skips_a_truncated_newest_checkpoint(tmp_path):
    old = save(Net(), tmp_path / 'epoch_1.pth')
    new = save(Net(), tmp_path / 'epoch_2.pth')
    os.utime(old, (1, 1))
    (tmp_path / 'last_checkpoint').write_text(new)
    assert newest_loadable_checkpoint(str(tmp_path)) == new
    data = open(new, 'rb').read()
    open(new, 'wb').write(data[:len(data) // 2])
    with pytest.warns(UserWarning, match='skipping checkpoint .*epoch_2'):
        assert newest_loadable_checkpoint(str(tmp_path)) == old
    assert newest_loadable_checkpoint(str(tmp_path / 'none')) is None


def test_pytorch_launcher_outside_torchrun(monkeypatch):
    from mmengine.config import Config
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match=r'--launcher pytorch needs .*RANK'):
        setup_distributed(Config(dict(model=dict())), 'pytorch')
