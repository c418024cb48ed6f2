"""Kill -9 a training run mid-epoch, resume it, and get the weights an uninterrupted run gets, bit for bit.

The run uses what makes resuming hard: random crops (NumPy), stochastic depth (torch), an EMA, AdamW,
warm-up + cosine per iteration, validation between epochs, and checkpoints by iteration inside epochs.
"""
import textwrap

import pytest
import torch
from reliability_runner import REPO, run_train

from vmamba_mm.compat import trusted_checkpoint_globals

DEMO = REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'

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


def _load(path):
    with trusted_checkpoint_globals():
        return torch.load(path, map_location='cpu')


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

    expected, actual = _load(straight / 'iter_16.pth'), _load(split / 'iter_16.pth')
    assert (actual['meta']['epoch'], actual['meta']['iter']) == (expected['meta']['epoch'], expected['meta']['iter'])
    for part in ('state_dict', 'ema_state_dict'):
        assert actual[part].keys() == expected[part].keys()
        for key, value in expected[part].items():
            torch.testing.assert_close(actual[part][key], value, rtol=0, atol=0, msg=f'{part}.{key}')
    for index, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            torch.testing.assert_close(actual['optimizer']['state'][index][name], value, rtol=0, atol=0)
    assert actual['param_schedulers'] == expected['param_schedulers']
    assert actual['message_hub']['log_scalars']['train/loss'].data[0][-1] == \
        expected['message_hub']['log_scalars']['train/loss'].data[0][-1]
