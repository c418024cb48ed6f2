"""ResumableEpochBasedTrainLoop in a toy run: mid-epoch resume at the next batch with the random states."""
import pytest
import torch
from mmengine.hooks import Hook
from toy_training import build_runner

from vmamba_mm.compat import trusted_checkpoint_globals
from vmamba_mm.engine import ResumeError

VALUES = [1.0, 2.0, 3.0, 4.0]  # 4 steps per epoch
LOOP = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)
EVERY_3_STEPS = dict(type='AtomicCheckpointHook', interval=3, by_epoch=False, max_keep_ckpts=5)


class Interrupt(Exception):
    pass


class InterruptAfter(Hook):
    priority = 'LOWEST'

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            raise Interrupt


def _train(work_dir, values=VALUES, hooks=(), **kwargs):
    runner = build_runner(work_dir, values, custom_hooks=hooks, checkpoint=EVERY_3_STEPS, noisy=True,
                          train_cfg=LOOP, randomness=dict(seed=1), **kwargs)
    with trusted_checkpoint_globals():  # what tools/train.py does: mmengine's checkpoints pickle a few classes
        runner.train()
    return runner.model.w.detach()


@pytest.mark.parametrize('train_cfg, exact', [(LOOP, True), (dict(by_epoch=True, max_epochs=2), False)])
def test_mid_epoch_resume_matches_an_uninterrupted_run(tmp_path, train_cfg, exact):
    expected = _train(tmp_path / 'straight')

    with pytest.raises(Interrupt):  # after step 7; the last checkpoint is step 6 (epoch 2, batch 2)
        build_runner(tmp_path / 'split', VALUES, custom_hooks=[InterruptAfter(7)], checkpoint=EVERY_3_STEPS,
                     noisy=True, train_cfg=train_cfg, randomness=dict(seed=1)).train()
    resumed = build_runner(tmp_path / 'split', VALUES, checkpoint=EVERY_3_STEPS, noisy=True, train_cfg=train_cfg,
                           randomness=dict(seed=1), resume=True, load_from=str(tmp_path / 'split' / 'iter_6.pth'))
    with trusted_checkpoint_globals():
        resumed.train()

    if exact:
        assert resumed.iter == 8
        torch.testing.assert_close(resumed.model.w.detach(), expected, rtol=0, atol=0)
    else:  # mmengine's loop trains epoch 2 from its first batch again: 10 steps, other weights
        assert resumed.iter == 10
        assert not torch.allclose(resumed.model.w.detach(), expected)


def test_resume_with_a_different_number_of_batches_per_epoch(tmp_path):
    with pytest.raises(Interrupt):  # checkpoint at step 3: epoch 1, batch 3
        _train(tmp_path, hooks=[InterruptAfter(3)])
    with pytest.raises(ResumeError, match=r'^the checkpoint was written after batch 3 of epoch 1, but the data '
                                          r'loader now has 2 batches per epoch: resume with the dataset and batch '
                                          r'size the run was started with$'):
        _train(tmp_path, values=[1.0, 2.0], resume=True, load_from=str(tmp_path / 'iter_3.pth'))
