"""Numerics of real training runs: a diverging run stops with a clear error (classification and Mask R-CNN);
float16 and bfloat16 autocast train the digits demo without a NaN (VMamba's scan keeps its state in float32)."""
import json
import math
import re
import textwrap

import pytest
import torch
from reliability_runner import REPO, run_train

DEMO = REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'
DETECTION_DEMO = REPO / 'configs' / 'detection' / 'mask-rcnn_vmamba-demo_shapes.py'

# One epoch of 256 digits in batches of 32, every loss logged, and NonFiniteLossHook on.
SHORT_RUN = '''
_base_ = ['{demo}']
data_root = '{data}'
train_dataloader = dict(batch_size=32, dataset=dict(data_root=data_root, indices={images}))
val_dataloader = dict(dataset=dict(data_root=data_root, indices=64))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(non_finite_loss=dict(type='NonFiniteLossHook'), logger=dict(interval=1))
'''


def _write_config(folder, digits_root, images, extra=''):
    path = folder / 'short.py'
    path.write_text(textwrap.dedent(SHORT_RUN).format(demo=DEMO, data=digits_root, images=images) + extra)
    return path


def _train_losses(work_dir):
    (scalars, ) = work_dir.glob('*/vis_data/scalars.json')
    return [record['loss'] for record in map(json.loads, scalars.read_text().splitlines()) if 'loss' in record]


@pytest.mark.slow
def test_a_diverging_run_stops_with_the_iteration_and_the_last_finite_loss(tmp_path, digits_root):
    config = _write_config(tmp_path, digits_root, 128, "optim_wrapper = dict(optimizer=dict(lr=1e30), clip_grad=None)\n")
    result = run_train(config, '--work-dir', tmp_path / 'run', cwd=tmp_path)
    assert result.returncode != 0
    reported = re.search(r'NonFiniteLossError: loss is nan at iteration 2 \(epoch 1\); the last finite loss was '
                         r'([0-9.]+) at iteration 1\. Training stopped before this step changed the weights\.',
                         result.stderr)
    assert reported, result.stderr[-3000:]
    assert abs(float(reported[1]) - _train_losses(tmp_path / 'run')[0]) < 1e-4  # the log keeps 4 decimals
    assert 'optim_wrapper.dtype=bfloat16' in result.stderr
    assert "the batch's inputs hold" not in result.stderr  # finite images: the inputs are not blamed
    assert not list((tmp_path / 'run').glob('*.pth'))


@pytest.mark.slow
def test_non_finite_inputs_are_named_when_their_loss_stops_training(tmp_path, digits_root):
    """A normalisation std of 0 divides by zero: the model does not check its inputs while training (no host read
    per step), so the loss hook names them."""
    config = _write_config(tmp_path, digits_root, 64, 'data_preprocessor = dict(std=[0.0, 0.0, 0.0])\n')
    result = run_train(config, '--work-dir', tmp_path / 'run', cwd=tmp_path)
    assert result.returncode != 0
    assert re.search(r"NonFiniteLossError: loss is nan at iteration 1 \(epoch 1\); no step of this run had a finite "
                     r"loss yet; the batch's inputs hold [0-9]+ non-finite values \(NaN/inf\) after the data "
                     r'preprocessor: check the data and its normalisation', result.stderr), result.stderr[-3000:]


@pytest.mark.slow
def test_mask_rcnn_with_a_huge_learning_rate_stops_at_the_first_non_finite_loss(tmp_path, shapes_project):
    """The detection runtime has the non-finite-loss stop: without it this run trains to the end on NaN weights."""
    config = tmp_path / 'diverging.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = ['{DETECTION_DEMO}']
        train_dataloader = dict(batch_size=2)
        train_cfg = dict(max_epochs=1)
        optim_wrapper = dict(optimizer=dict(lr=1e12))
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=1))
        '''))
    result = run_train(config, '--work-dir', tmp_path / 'run', cwd=shapes_project)
    assert result.returncode == 1, result.stderr[-3000:]
    reported = re.fullmatch(r'NonFiniteLossError: loss is \S+ at iteration (\d+) \(epoch 1\); the last finite loss was '
                            r'\S+ at iteration (\d+)\. Training stopped before this step changed the weights\..*',
                            result.stderr.strip().splitlines()[-1])
    assert reported, result.stderr[-3000:]
    stopped_at, last_finite = int(reported[1]), int(reported[2])
    assert 1 < stopped_at < 6 and last_finite == stopped_at - 1
    # Every checkpoint holds finite weights: the one of the last finite step is the last one written.
    assert (tmp_path / 'run' / 'last_checkpoint').read_text() == str(tmp_path / 'run' / f'iter_{last_finite}.pth')
    for path in (tmp_path / 'run').glob('iter_*.pth'):
        weights = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
        assert all(torch.isfinite(value).all() for value in weights.values() if value.is_floating_point()), path


@pytest.mark.slow
@pytest.mark.parametrize('precision', ['float16', 'bfloat16'])
def test_autocast_training_stays_finite_and_learns(tmp_path, digits_root, precision):
    if precision == 'float16':
        config = _write_config(tmp_path, digits_root, 256,
                               "optim_wrapper = dict(type='CPUAutocastOptimWrapper', dtype='float16')\n")
        result = run_train(config, '--work-dir', tmp_path / 'run', cwd=tmp_path)
    else:  # what --amp gives on a machine without a GPU
        result = run_train(_write_config(tmp_path, digits_root, 256), '--amp', '--work-dir', tmp_path / 'run',
                           cwd=tmp_path)
        assert 'mixed precision runs as bfloat16 autocast on the CPU' in result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    losses = _train_losses(tmp_path / 'run')
    assert len(losses) == 8 and all(map(math.isfinite, losses))
    assert losses[-1] < 0.8 * losses[0]
