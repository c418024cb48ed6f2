"""publish_model.py: training state removed, weights and meta kept, the name carries the file's sha256."""
import hashlib
import re

import pytest
import torch
from tool_runner import load_tool


def training_checkpoint(path):
    checkpoint = dict(
        meta=dict(epoch=3, iter=30, seed=0),
        state_dict={'backbone.weight': torch.arange(6.0).view(2, 3), 'head.bias': torch.ones(2)},
        ema_state_dict={'module.head.bias': torch.zeros(2)},
        optimizer=dict(state={0: dict(exp_avg=torch.ones(6))}, param_groups=[dict(lr=0.1)]),
        param_schedulers=[dict(last_epoch=3)],
        message_hub=dict(log_scalars={}, runtime_info=dict(epoch=3)))
    torch.save(checkpoint, path)
    return checkpoint


def test_publish_strips_training_state_and_names_by_hash(tmp_path, capsys):
    source = tmp_path / 'epoch_3.pth'
    original = training_checkpoint(source)
    source_bytes = source.read_bytes()
    load_tool('model_converters/publish_model.py').main([str(source), str(tmp_path / 'out' / 'vmamba-demo.pth')])
    published, = (tmp_path / 'out').iterdir()
    match = re.fullmatch(r'vmamba-demo-([0-9a-f]{8})\.pth', published.name)
    assert match and hashlib.sha256(published.read_bytes()).hexdigest().startswith(match.group(1))
    assert f'published {published}' in capsys.readouterr().out
    content = torch.load(published, weights_only=True)
    assert sorted(content) == ['ema_state_dict', 'meta', 'state_dict']
    assert content['meta'] == original['meta']
    torch.testing.assert_close(content['state_dict'], original['state_dict'])
    assert source.read_bytes() == source_bytes  # the input is untouched


def test_same_content_same_name(tmp_path):
    tool = load_tool('model_converters/publish_model.py')
    source = tmp_path / 'epoch_3.pth'
    training_checkpoint(source)
    assert tool.publish(str(source), str(tmp_path / 'a.pth')) == tool.publish(str(source), str(tmp_path / 'a.pth'))
    assert len(list(tmp_path.glob('a-*.pth'))) == 1
    assert not list(tmp_path.glob('.a.*'))  # no staging file left behind


def test_non_mmengine_checkpoint_is_refused(tmp_path):
    tool = load_tool('model_converters/publish_model.py')
    source = tmp_path / 'weights.pth'
    torch.save({'weight': torch.ones(2)}, source)
    with pytest.raises(ValueError, match="no 'state_dict'"):
        tool.publish(str(source), str(tmp_path / 'out.pth'))
    assert sorted(path.name for path in tmp_path.iterdir()) == ['weights.pth']
    with pytest.raises(FileNotFoundError):
        tool.publish(str(tmp_path / 'missing.pth'), str(tmp_path / 'out.pth'))
