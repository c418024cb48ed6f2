"""Kill -9 a training run mid-epoch, resume it, and get the weights an uninterrupted run gets, bit for bit:
classification, detection (epoch-based) and segmentation (iteration-based).

The runs use what makes resuming hard: random crops, flips and photometric distortion (NumPy), stochastic
depth and RoI sampling (torch), an EMA, AdamW, warm-up and per-iteration schedules, validation between
epochs, and checkpoints by iteration inside epochs (and passes over the data).
"""
import textwrap

import pytest
import torch
from reliability_runner import REPO, run_train

from vmamba_mm.compat import trusted_checkpoint_globals

DEMO = REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'
DETECTION_DEMO = REPO / 'configs' / 'detection' / 'mask-rcnn_vmamba-demo_shapes.py'
SEGMENTATION_DEMO = REPO / 'configs' / 'segmentation' / 'upernet_vmamba-demo_shapes.py'

# 256 training images in batches of 32: 8 steps per epoch, 2 epochs; a checkpoint every 5 steps
# (iterations 5 and 10 fall inside epochs 1 and 2). The killed run dies after step 12 (epoch 2, batch 4).
RESUMABLE = '''
_base_ = ['{demo}']
data_root = '{data}'
max_epochs = 2
model = dict(backbone=dict(drop_path_rate=0.1))
train_dataloader = dict(batch_size=32, dataset=dict(data_root=data_root, indices=256))
val_dataloader = dict(batch_size=64, dataset=dict(data_root=data_root, indices=64))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(_delete_=True, type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=5, max_keep_ckpts=2))
randomness = dict(seed=0, deterministic=True)
'''
KILLED_AFTER_STEP_12 = '''
_base_ = ['./resumable.py']
custom_imports = dict(imports=['interruptions'], allow_failed_imports=False)
custom_hooks = [*{ema}, dict(type='SigkillAtIteration', iteration=12)]
'''


# The shapes demos on 12 training images (`shapes_project`), checkpoints every 4 steps; killed after step 10,
# they resume from step 8. Detection: batches of 2, 6 steps per epoch, 2 epochs with validation after each
# (step 8 is epoch 2, batch 2). Segmentation: batches of 4, 3 steps per pass over the data, 12 steps with
# validation after step 6 (step 8 is pass 3, batch 2).
RESUMABLE_SHAPES = {
    'detection': '''
_base_ = ['{demo}']
train_dataloader = dict(batch_size=2)
train_cfg = dict(max_epochs=2, val_interval=1)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4, max_keep_ckpts=2))
randomness = dict(seed=0, deterministic=True)
''',
    'segmentation': '''
_base_ = ['{demo}']
train_cfg = dict(max_iters=12, val_interval=6)
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=2))
randomness = dict(seed=0, deterministic=True)
''',
}
KILLED_AFTER_STEP_10 = '''
_base_ = ['./resumable.py']
custom_imports = dict(imports=['vmamba_mm', 'interruptions'], allow_failed_imports=False)
custom_hooks = [dict(type='SigkillAtIteration', iteration=10)]
'''


def _load(path):
    with trusted_checkpoint_globals():
        return torch.load(path, map_location='cpu')


def assert_same_training_state(actual, expected, weights=('state_dict', )):
    """Two checkpoints hold the same position, weights, optimizer state, schedulers and last logged loss, exactly."""
    assert (actual['meta']['epoch'], actual['meta']['iter']) == (expected['meta']['epoch'], expected['meta']['iter'])
    for part in weights:
        assert actual[part].keys() == expected[part].keys()
        for key, value in expected[part].items():
            torch.testing.assert_close(actual[part][key], value, rtol=0, atol=0, msg=f'{part}.{key}')
    for index, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            torch.testing.assert_close(actual['optimizer']['state'][index][name], value, rtol=0, atol=0)
    assert actual['param_schedulers'] == expected['param_schedulers']
    assert actual['message_hub']['log_scalars']['train/loss'].data[0][-1] == \
        expected['message_hub']['log_scalars']['train/loss'].data[0][-1]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path, digits_root):
    from mmengine.config import Config

    (tmp_path / 'resumable.py').write_text(textwrap.dedent(RESUMABLE).format(demo=DEMO, data=digits_root))
    ema = Config.fromfile(str(tmp_path / 'resumable.py')).custom_hooks
    assert [hook['type'] for hook in ema] == ['EMAHook']
    (tmp_path / 'killed.py').write_text(KILLED_AFTER_STEP_12.format(ema=[dict(hook) for hook in ema]))
    straight, split = tmp_path / 'straight', tmp_path / 'split'

    result = run_train('resumable.py', '--work-dir', straight, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    killed = run_train('killed.py', '--work-dir', split, cwd=tmp_path)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (split / 'last_checkpoint').read_text() == str(split / 'iter_10.pth')
    resumed = run_train('resumable.py', '--work-dir', split, '--resume', cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 1, iter: 10' in resumed.stdout + resumed.stderr

    assert_same_training_state(_load(split / 'iter_16.pth'), _load(straight / 'iter_16.pth'),
                               weights=('state_dict', 'ema_state_dict'))


@pytest.mark.slow
@pytest.mark.parametrize('task', sorted(RESUMABLE_SHAPES))
def test_detection_and_segmentation_resume_after_sigkill_as_uninterrupted(tmp_path, shapes_project, task):
    demo = DETECTION_DEMO if task == 'detection' else SEGMENTATION_DEMO
    (tmp_path / 'resumable.py').write_text(textwrap.dedent(RESUMABLE_SHAPES[task]).format(demo=demo))
    (tmp_path / 'killed.py').write_text(KILLED_AFTER_STEP_10)
    straight, split = tmp_path / 'straight', tmp_path / 'split'

    result = run_train(tmp_path / 'resumable.py', '--work-dir', straight, cwd=shapes_project)
    assert result.returncode == 0, result.stderr[-3000:]
    killed = run_train(tmp_path / 'killed.py', '--work-dir', split, cwd=shapes_project)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (split / 'last_checkpoint').read_text() == str(split / 'iter_8.pth')
    resumed = run_train(tmp_path / 'resumable.py', '--work-dir', split, '--resume', cwd=shapes_project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'resumed epoch: {1 if task == "detection" else 0}, iter: 8' in resumed.stdout + resumed.stderr

    assert_same_training_state(_load(split / 'iter_12.pth'), _load(straight / 'iter_12.pth'))


@pytest.mark.slow
def test_resume_names_a_truncated_latest_checkpoint(tmp_path, digits_root):
    """A `last_checkpoint` pointing to a truncated file (e.g. written by another tool): --resume says which file."""
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    torch.save({'state_dict': {'w': torch.ones(1000)}, 'meta': {}}, work_dir / 'iter_5.pth')
    data = (work_dir / 'iter_5.pth').read_bytes()
    (work_dir / 'iter_5.pth').write_bytes(data[:len(data) // 2])
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_5.pth'))
    before = {path.name: path.read_bytes() for path in work_dir.iterdir()}

    result = run_train(DEMO, '--work-dir', work_dir, '--resume', '--cfg-options',
                       f'train_dataloader.dataset.data_root={digits_root}', f'val_dataloader.dataset.data_root={digits_root}',
                       cwd=tmp_path, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f'CheckpointError: checkpoint {work_dir / "iter_5.pth"} cannot be read (truncated or corrupt?)')
    assert {path.name: path.read_bytes() for path in work_dir.iterdir()} == before
