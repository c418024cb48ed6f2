"""An epoch-based training loop whose resumed runs continue exactly where the interrupted one stopped.

mmengine's `EpochBasedTrainLoop`, resumed from a checkpoint written in the middle of an epoch (by
``CheckpointHook(by_epoch=False)``), starts that epoch again from its first batch: the batches trained
before the interruption are trained twice and the schedule ends early. Neither loop puts the random
number generators in the checkpoint, so random augmentations and stochastic depth draw differently
after any resume. `ResumableEpochBasedTrainLoop` records where it is in the epoch and the random
states with every iteration (in the message hub, which every checkpoint saves), and a resumed run
replays the data loader up to that batch and restores the random states: its weights equal those of
an uninterrupted run, bit for bit on a CPU with deterministic settings.
"""
import contextlib
import logging
import random

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop

# Message-hub keys (saved in every checkpoint): the random states when the current epoch's data
# loader was started, and the position and random states after the latest training step.
EPOCH_START = 'resumable_loop.epoch_start'
LAST_STEP = 'resumable_loop.last_step'


class ResumeError(RuntimeError):
    """The checkpoint does not describe a point this run can continue from."""


def capture_rng_state():
    """Python, NumPy and torch random states, held in types that weights-only loading accepts."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(
        python=random.getstate(),
        numpy=(kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached_gaussian)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    random.setstate(state['python'])
    kind, keys, position, has_gauss, cached_gaussian = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextlib.contextmanager
def rng_state_kept():
    """Whatever runs inside leaves the random states as it found them."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """`EpochBasedTrainLoop` (same arguments) that resumes mid-epoch at the next batch, with the
    random states of the interrupted run.

    Use it as ``train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=..., val_interval=...)``.
    Validation runs with the random states saved and restored around it, so training draws the same
    random numbers whatever the validation interval (and a resume need not replay validation).

    On resume the batches of the current epoch that were already trained are loaded again and dropped
    (their random augmentations drawn as before), which takes the time of loading them. With several
    processes and ``randomness.diff_rank_seed=True`` the checkpoint holds only rank 0's random states:
    the position is restored, the random states are not (a warning says so). Data-loader workers are
    restored exactly when they start afresh every epoch (``persistent_workers=False``); persistent
    workers carry random states across epochs that no checkpoint holds (a warning says so).
    """

    def run(self):
        self.runner.call_hook('before_train')
        resume = self._resume_point()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch(resume)
            resume = None

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._epoch >= self.val_begin
                    and (self._epoch % self.val_interval == 0 or self._epoch == self._max_epochs)):
                with rng_state_kept():
                    self.runner.val_loop.run()

        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self, resume=None):
        """One epoch; `resume` = (batches already trained in it, epoch-start and last-step random states)."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done, epoch_start, last_step = resume or (0, None, None)
        if done == 0 and last_step is not None:
            restore_rng_state(last_step)
        elif epoch_start is not None:
            restore_rng_state(epoch_start)
        self.runner.message_hub.update_info(EPOCH_START, dict(epoch=self._epoch, rng=capture_rng_state()))

        batches = iter(self.dataloader)
        for _ in range(done):
            next(batches)
        if done and last_step is not None:
            restore_rng_state(last_step)
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)

        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch):
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
        # Before the after_train_iter hooks: a checkpoint they write continues from exactly here.
        self.runner.message_hub.update_info(LAST_STEP,
                                            dict(epoch=self._epoch, batch=idx + 1, rng=capture_rng_state()))
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1

    def _resume_point(self):
        """Where a resumed run picks up, from the message hub a checkpoint restored; None for a fresh run."""
        if self._iter == 0:
            return None
        hub = self.runner.message_hub
        last_step, epoch_start = hub.get_info(LAST_STEP), hub.get_info(EPOCH_START)
        if last_step is None:
            print_log(
                f'ResumableEpochBasedTrainLoop: the checkpoint holds no data-loader position or random state '
                f'(written by another train loop); epoch {self._epoch + 1} runs from its first batch, with fresh '
                f'random states',
                logger='current', level=logging.WARNING)
            return None
        if last_step['epoch'] == self._epoch:
            done = last_step['batch']
        elif last_step['epoch'] == self._epoch - 1:
            done = 0  # saved at the end of an epoch
        else:
            raise ResumeError(f"the checkpoint resumes epoch {self._epoch + 1} but records its last step in epoch "
                              f"{last_step['epoch'] + 1}: its position was not written by this loop")
        if done > len(self.dataloader):
            raise ResumeError(
                f'the checkpoint was written after batch {done} of epoch {self._epoch + 1}, but the data loader '
                f'now has {len(self.dataloader)} batches per epoch: resume with the dataset and batch size '
                f'the run was started with')
        if get_world_size() > 1 and self.runner.cfg.get('randomness', {}).get('diff_rank_seed', False):
            print_log('ResumableEpochBasedTrainLoop: diff_rank_seed=True and the checkpoint holds rank 0\'s '
                      'random states only; they are not restored', logger='current', level=logging.WARNING)
            return done, None, None
        if self.dataloader.num_workers > 0 and self.dataloader.persistent_workers and self._epoch > 0:
            print_log('ResumableEpochBasedTrainLoop: with persistent_workers=True the data-loader workers carried '
                      'their random states over from earlier epochs, which a checkpoint cannot hold: random '
                      'augmentations now draw differently from the interrupted run (persistent_workers=False '
                      'resumes exactly)', logger='current', level=logging.WARNING)
        start_rng = epoch_start['rng'] if epoch_start is not None and epoch_start['epoch'] == self._epoch else None
        if done and start_rng is None:
            raise ResumeError(f'the checkpoint has no random state for the start of epoch {self._epoch + 1}')
        return done, start_rng, last_step['rng']
