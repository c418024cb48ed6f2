"""Checkpoints a user hands the tools by mistake, or on purpose: each one is a one-line error naming the fix,
or the right result; none runs code, none is evaluated with weights it does not hold.

Each probe runs tools/train.py or tools/test.py as a user does, on the digits demo.
"""
import pytest
import torch
from reliability_runner import REPO, run_python

DEMO = REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'
# One epoch, checkpoint at its end, no validation: the quickest real training run of the demo.
ONE_EPOCH = ('--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=100',
             'default_hooks.checkpoint.interval=1')

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def project(digits_root, tmp_path_factory):
    """A folder with data/digits and a finished one-epoch demo run (work/epoch_1.pth)."""
    folder = digits_root.parents[1]
    result = run_python(REPO / 'tools' / 'train.py', DEMO, '--work-dir', folder / 'work', *ONE_EPOCH, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def _last_line(result):
    return result.stderr.strip().splitlines()[-1]


def _error(result):
    """The error the tool ended with: from its `Type: message` line to the end, with no traceback before it."""
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    start = max(index for index, line in enumerate(lines) if line.startswith(('IncompatibleCheckpointError:',
                                                                                  'CheckpointError:')))
    return '\n'.join(lines[start:])


def _weights(project):
    return torch.load(project / 'work' / 'epoch_1.pth', weights_only=False)['state_dict']


def _narrower(weights):
    """The demo's weights with one channel less in every tensor that has channels: another architecture."""
    return {key: value[..., :-1] if value.dim() else value for key, value in weights.items()}


def _renamed(weights):
    weights = dict(weights)
    weights['backbone.stages.0.blocks.0.norm1.scale'] = weights.pop('backbone.stages.0.blocks.0.norm1.weight')
    return weights


def _extra_block(weights):
    extra = {key.replace('stages.2.blocks.0.', 'stages.2.blocks.1.'): value for key, value in weights.items()
             if 'stages.2.blocks.0.' in key}
    return dict(weights, **extra)


def _as_detector(weights):
    """A detector's checkpoint: the backbone under ``backbone.`` plus a neck, no classifier head."""
    detector = {key: value for key, value in weights.items() if key.startswith('backbone.')}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 128, 1, 1)
    return detector


# (probe, how the checkpoint is made from the demo's weights, a fragment of the one-line error)
MISMATCHED = [
    ('another architecture', _narrower, 'shape mismatches'),
    ('a renamed key', _renamed, 'unexpected keys (1): backbone.stages.0.blocks.0.norm1.scale'),
    ('one extra block', _extra_block, 'backbone.stages.2.blocks.1.'),
    ('a detector checkpoint', _as_detector, 'missing keys (2): head.fc.bias, head.fc.weight'),
]


@pytest.mark.parametrize('make', [probe[1] for probe in MISMATCHED], ids=[probe[0] for probe in MISMATCHED])
def test_test_py_refuses_a_checkpoint_that_does_not_fit_before_evaluating(project, tmp_path, make):
    fragment = dict((probe[1], probe[2]) for probe in MISMATCHED)[make]
    checkpoint = tmp_path / 'mismatched.pth'
    torch.save({'state_dict': make(_weights(project)), 'meta': {}}, checkpoint)
    result = run_python(REPO / 'tools' / 'test.py', DEMO, checkpoint, '--work-dir', tmp_path / 'test', cwd=project)
    assert result.returncode == 1
    error = _error(result)
    assert error.startswith('IncompatibleCheckpointError: Checkpoint does not fit ImageClassifier:\n'), error
    assert fragment in error
    assert error.endswith("give the backbone init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.').")
    assert 'accuracy/top1' not in result.stdout


def test_a_model_level_pretrained_init_cfg_is_strict(project, tmp_path):
    checkpoint = tmp_path / 'renamed.pth'
    torch.save({'state_dict': _renamed(_weights(project))}, checkpoint)
    result = run_python(REPO / 'tools' / 'train.py', DEMO, '--work-dir', tmp_path / 'run', *ONE_EPOCH,
                        'model.init_cfg.type=Pretrained', f'model.init_cfg.checkpoint={checkpoint}', cwd=project)
    assert result.returncode == 1
    error = _error(result)
    assert error.startswith('IncompatibleCheckpointError: Checkpoint does not fit ImageClassifier:\n'), error
    assert 'backbone.stages.0.blocks.0.norm1.scale' in error
    assert error.endswith('To load only the keys that fit, add strict=False to the init_cfg.')
    assert not list((tmp_path / 'run').glob('*.pth'))


def test_resume_never_runs_the_config_a_checkpoint_carries(project, tmp_path):
    marker = tmp_path / 'written_by_the_checkpoint'
    checkpoint = torch.load(project / 'work' / 'epoch_1.pth', weights_only=False)
    checkpoint['meta']['config'] = f"open({str(marker)!r}, 'w').write('ran')\n"
    evil = tmp_path / 'evil.pth'
    torch.save(checkpoint, evil)
    result = run_python(REPO / 'tools' / 'train.py', DEMO, '--resume', evil, '--work-dir', tmp_path / 'run',
                        *ONE_EPOCH, cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not marker.exists()


def test_resume_from_a_weights_only_file_names_what_resume_needs(project, tmp_path):
    weights = tmp_path / 'weights.pth'
    torch.save(_weights(project), weights)
    result = run_python(REPO / 'tools' / 'train.py', DEMO, '--resume', weights, '--work-dir', tmp_path / 'run',
                        *ONE_EPOCH, cwd=project)
    assert result.returncode == 1
    assert _last_line(result) == (f'CheckpointError: --resume {weights}: not a training checkpoint of tools/train.py '
                                  f'(no meta, optimizer, message_hub); to start a new run from its weights, pass '
                                  f'--cfg-options load_from={weights} instead')


def test_a_bare_state_dict_is_tested_under_the_ema_hook(project, tmp_path):
    bare = tmp_path / 'bare.pth'
    torch.save(_weights(project), bare)
    result = run_python(REPO / 'tools' / 'test.py', DEMO, bare, '--work-dir', tmp_path / 'test', cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'accuracy/top1:' in result.stdout


def test_a_misspelled_top_level_key_is_named(project, tmp_path):
    result = run_python(REPO / 'tools' / 'train.py', DEMO, '--work-dir', tmp_path / 'run', '--cfg-options',
                        'trian_dataloader.batch_size=8', cwd=project)
    assert result.returncode == 1
    assert _last_line(result) == (f"ConfigFileError: config {DEMO}: unknown top-level key 'trian_dataloader' "
                                  "(did you mean 'train_dataloader'?); as written it would be ignored")
