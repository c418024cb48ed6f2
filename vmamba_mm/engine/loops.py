"""Training loops whose resumed runs continue exactly where the interrupted one stopped.

mmengine's `EpochBasedTrainLoop`, resumed from a checkpoint written in the middle of an epoch (by
``CheckpointHook(by_epoch=False)``), starts that epoch again from its first batch: the batches trained
before the interruption are trained twice and the schedule ends early. Its `IterBasedTrainLoop` loads
every batch trained so far again to find its place. Neither loop puts the random number generators in
the checkpoint, so random augmentations and stochastic depth draw differently after any resume, and
neither notices a resume with another batch size, training set, number of processes or learning-rate
schedule: the restored schedulers silently keep the checkpoint's iteration counts.

`ResumableEpochBasedTrainLoop` and `ResumableIterBasedTrainLoop` record where they are in the current
pass over the data and the random states with every iteration, and what shapes the run, in the message
hub, which every checkpoint saves. A resumed run first compares the run's shape with the checkpoint's
(:class:`ResumeError` names what changed), then replays the current pass of the data loader up to the
recorded batch and restores the random states: its weights equal those of an uninterrupted run, bit for
bit on a CPU with deterministic settings.
"""
import contextlib
import logging
import random
from collections.abc import Mapping

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

# Message-hub keys (saved in every checkpoint): the random states when the current pass over the data
# loader was started, the position and random states after the latest training step, and the run's shape.
EPOCH_START = 'resumable_loop.epoch_start'
LAST_STEP = 'resumable_loop.last_step'
RUN_SHAPE = 'resumable_loop.run_shape'


class ResumeError(RuntimeError):
    """The checkpoint does not describe a point this run can continue from, or this run differs from the
    checkpoint's in a way that would silently change its result."""


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


def set_sampler_epoch(dataloader, epoch):
    """Tell the data loader's sampler which pass over the data comes next (it reshuffles per pass), where
    mmengine's `DistSamplerSeedHook` looks for it: the loader's sampler, else its batch sampler's."""
    if hasattr(dataloader.sampler, 'set_epoch'):
        dataloader.sampler.set_epoch(epoch)
    elif hasattr(getattr(dataloader.batch_sampler, 'sampler', None), 'set_epoch'):
        dataloader.batch_sampler.sampler.set_epoch(epoch)


def is_endless(dataloader):
    """Whether the data loader reads one endless pass: mmengine's `InfiniteSampler` (mmseg's ADE20K configs use
    it) draws a new permutation whenever one ends, and `set_epoch` does not restart it."""
    sampler = getattr(dataloader.batch_sampler, 'sampler', None) or dataloader.sampler
    return isinstance(sampler, InfiniteSampler)


def restart_endless_sampler(dataloader):
    """Start an `InfiniteSampler` over from its seeded first index.

    Its index stream is one generator, made when it is built and shared by every iterator over the loader. An
    iterator whose workers started prefetching closes that generator when it is closed (mmengine's iteration loop
    opens one when it is built), and every later pass would then end before its first batch. Starting from the
    first index is also what a resumed run replays its pass from."""
    sampler = getattr(dataloader.batch_sampler, 'sampler', None) or dataloader.sampler
    if isinstance(sampler, InfiniteSampler):
        sampler.indices = sampler._indices_of_rank()


def batch_size_of(dataloader):
    """Samples per batch and process; mmdet's aspect-ratio batch sampler holds it instead of the loader."""
    if dataloader.batch_size is not None:
        return dataloader.batch_size
    return getattr(dataloader.batch_sampler, 'batch_size', None)


def plain(value):
    """`value` (a config entry) as dicts, lists and scalars: comparable, and loadable from a weights-only
    checkpoint."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def describe_change(name, was, now):
    """What changed in the run-shape entry `name`, and how to resume the run as it was."""
    if name == 'param_scheduler':
        return f'the learning-rate schedule changed ({schedule_difference(was, now)}): restore the param_scheduler ' \
               f'the run was started with'
    fixes = dict(
        batch_size=f'--cfg-options train_dataloader.batch_size={was}',
        dataset_length='the training set the run was started with (train_dataloader.dataset: data_root, ann_file, '
        'indices, filter_cfg)',
        world_size='1 process (tools/train.py without a launcher)' if was == 1 else
        f'{was} processes (e.g. bash tools/dist_train.sh CONFIG {was} --resume)',
        loop=f"train_cfg.type='{was}'")
    labels = dict(batch_size='batch size per process', dataset_length='training set length',
                  world_size='number of processes', loop='train loop')
    return f'{labels[name]} was {was}, is now {now}: resume with {fixes[name]}'


def schedule_difference(was, now):
    """The first difference between two `param_scheduler` entries, e.g. ``param_scheduler[1].end 12 -> 24``."""
    if isinstance(was, list) and isinstance(now, list) and len(was) == len(now):
        for index, (old, new) in enumerate(zip(was, now)):
            if old != new and isinstance(old, dict) and isinstance(new, dict):
                keys = [key for key in {**old, **new} if old.get(key) != new.get(key)]
                return ', '.join(f'param_scheduler[{index}].{key} {old.get(key)!r} -> {new.get(key)!r}'
                                 for key in keys)
    return f'param_scheduler {was!r} -> {now!r}'


class ResumableLoopMixin:
    """What both resumable loops share: the record of each step (position and random states), a pass over
    the data started at a recorded position, and the checks a resumed run makes.

    A loop using it reads the data loader pass by pass through `_begin_pass` and calls `_record_step` after
    each training step; it provides `_position` (where a recorded last step leaves the data, as (pass,
    batches of it trained)) and `_unrecorded_position` (the same for a checkpoint of another loop)."""

    def _run_shape(self):
        """What a resumed run must share with the checkpoint's run to continue it exactly."""
        return dict(
            loop=type(self).__name__,
            batch_size=batch_size_of(self.dataloader),
            dataset_length=len(self.dataloader.dataset),
            world_size=get_world_size(),
            param_scheduler=plain(self.runner.cfg.get('param_scheduler')),
        )

    def _check_run_shape(self):
        """Refuse to resume a run of another shape (:class:`ResumeError` names every change), then record this
        run's shape for the checkpoints it writes."""
        hub, shape = self.runner.message_hub, self._run_shape()
        recorded = hub.get_info(RUN_SHAPE) if self._iter > 0 else shape
        if recorded is None:
            print_log(f'{type(self).__name__}: the checkpoint records no batch size, training set length, number of '
                      f'processes or learning-rate schedule (written before these were recorded); resuming without '
                      f'checking that they are unchanged', logger='current', level=logging.WARNING)
        else:
            changes = [describe_change(name, recorded[name], value) for name, value in shape.items()
                       if name in recorded and recorded[name] != value]
            if changes:
                raise ResumeError(
                    'cannot resume: this run differs from the checkpoint\'s, and continuing would silently change '
                    f'its result. {"; ".join(changes)}. To train from the checkpoint\'s weights with the new settings '
                    'instead, start a new run in another work dir with --cfg-options load_from=CHECKPOINT (without '
                    '--resume)')
        hub.update_info(RUN_SHAPE, shape)

    def _begin_pass(self, epoch, done=0, start_rng=None, last_rng=None):
        """An iterator over pass number `epoch` of the data loader from batch `done` on.

        A resumed pass draws as the interrupted one did: the data loader starts with the random states the
        pass started with (`start_rng`), the batches already trained are loaded and dropped, and training
        continues with the random states of the last step (`last_rng`)."""
        self._pass, self._batch = epoch, done
        set_sampler_epoch(self.dataloader, epoch)
        if done and done == self._pass_length():  # the checkpoint was written after the pass's last step
            if last_rng is not None:
                restore_rng_state(last_rng)
            return iter(())
        if done == 0 and last_rng is not None:
            restore_rng_state(last_rng)
        elif start_rng is not None:
            restore_rng_state(start_rng)
        self.runner.message_hub.update_info(EPOCH_START, dict(epoch=epoch, rng=capture_rng_state()))
        restart_endless_sampler(self.dataloader)
        batches = iter(self.dataloader)
        for _ in range(done):
            next(batches)
        if done and last_rng is not None:
            restore_rng_state(last_rng)
        return batches

    def _pass_length(self):
        """Batches per pass over the data; None for an endless pass."""
        return None if is_endless(self.dataloader) else len(self.dataloader)

    def _record_step(self):
        """After a training step, before the after_train_iter hooks: a checkpoint they write continues from here."""
        self._batch += 1
        self.runner.message_hub.update_info(LAST_STEP, dict(epoch=self._pass, batch=self._batch,
                                                            rng=capture_rng_state()))

    def _validate_if_due(self, step, last_step):
        """Validation after `step` epochs or iterations when the interval asks for it, with the random states
        saved and restored around it, so training draws the same numbers whatever the validation interval."""
        self._decide_current_val_interval()
        if (self.runner.val_loop is not None and step >= self.val_begin
                and (step % self.val_interval == 0 or step == last_step)):
            with rng_state_kept():
                self.runner.val_loop.run()

    def _resume_point(self):
        """Where a resumed run picks up, from the message hub a checkpoint restored: (pass over the data, batches
        of it already trained, random states at its start and after the last step); None for a fresh run."""
        if self._iter == 0:
            return None
        hub = self.runner.message_hub
        last_step, epoch_start = hub.get_info(LAST_STEP), hub.get_info(EPOCH_START)
        if last_step is None:
            return self._unrecorded_position()
        epoch, done = self._position(last_step)
        if done > (self._pass_length() or done):
            raise ResumeError(
                f'the checkpoint was written after batch {done} of epoch {epoch + 1}, but the data loader '
                f'now has {len(self.dataloader)} batches per epoch: resume with the dataset and batch size '
                f'the run was started with')
        name = type(self).__name__
        if get_world_size() > 1 and self.runner.cfg.get('randomness', {}).get('diff_rank_seed', False):
            print_log(f'{name}: diff_rank_seed=True and the checkpoint holds rank 0\'s random states only; they are '
                      'not restored', logger='current', level=logging.WARNING)
            return epoch, done, None, None
        if self.dataloader.num_workers > 0 and self.dataloader.persistent_workers and epoch > 0:
            print_log(f'{name}: with persistent_workers=True the data-loader workers carried their random states '
                      'over from earlier epochs, which a checkpoint cannot hold: random augmentations now draw '
                      'differently from the interrupted run (persistent_workers=False resumes exactly)',
                      logger='current', level=logging.WARNING)
        start_rng = epoch_start['rng'] if epoch_start is not None and epoch_start['epoch'] == epoch else None
        if done and start_rng is None:
            raise ResumeError(f'the checkpoint has no random state for the start of epoch {epoch + 1}')
        return epoch, done, start_rng, last_step['rng']


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(ResumableLoopMixin, EpochBasedTrainLoop):
    """`EpochBasedTrainLoop` (same arguments) that resumes mid-epoch at the next batch, with the
    random states of the interrupted run, and refuses a resume that would change the run.

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
        self._check_run_shape()
        self.runner.call_hook('before_train')
        resume = self._resume_point()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch(resume[1:] if resume else None)
            resume = None

            self._validate_if_due(self._epoch, self._max_epochs)

        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self, resume=None):
        """One epoch; `resume` = (batches already trained in it, epoch-start and last-step random states)."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        batches = self._begin_pass(self._epoch, *(resume or ()))
        for idx, data_batch in enumerate(batches, start=self._batch):
            self.run_iter(idx, data_batch)

        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch):
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
        self._record_step()
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1

    def _position(self, last_step):
        if last_step['epoch'] == self._epoch:
            return self._epoch, last_step['batch']
        if last_step['epoch'] == self._epoch - 1:
            return self._epoch, 0  # saved at the end of an epoch
        raise ResumeError(f"the checkpoint resumes epoch {self._epoch + 1} but records its last step in epoch "
                          f"{last_step['epoch'] + 1}: its position was not written by this loop")

    def _unrecorded_position(self):
        print_log(
            f'ResumableEpochBasedTrainLoop: the checkpoint holds no data-loader position or random state '
            f'(written by another train loop); epoch {self._epoch + 1} runs from its first batch, with fresh '
            f'random states',
            logger='current', level=logging.WARNING)
        return None


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(ResumableLoopMixin, IterBasedTrainLoop):
    """`IterBasedTrainLoop` (same arguments) that resumes at the next batch of the pass over the data it
    was in, with the random states of the interrupted run, and refuses a resume that would change the run.

    Use it as ``train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=..., val_interval=...)``.
    The data loader is read pass after pass (each reshuffled by its sampler's epoch, as mmengine's loop
    does); a resumed run loads again only the batches of the current pass that were already trained,
    where mmengine's loop loads every batch since the start of training. With mmengine's `InfiniteSampler`
    the data loader makes one endless pass, so a resumed run loads every batch trained so far again, as
    mmengine's loop does (with ``sampler=dict(type='DefaultSampler', shuffle=True)`` it need not).
    Validation, workers and several processes behave as in :class:`ResumableEpochBasedTrainLoop`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # mmengine's constructor opens an endless iterator over the data loader (and its workers); this loop
        # opens each pass itself, at the position a checkpoint recorded.
        del self.dataloader_iterator

    def run(self):
        self._check_run_shape()
        self.runner.call_hook('before_train')
        # As in mmengine's loop, the whole training is one "epoch" for the hooks.
        self.runner.call_hook('before_train_epoch')
        epoch, *resume = self._resume_point() or (0, )
        batches = self._begin_pass(epoch, *resume)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            try:
                data_batch = next(batches)
            except StopIteration:  # the end of a pass: the next one, reshuffled
                batches = self._begin_pass(self._pass + 1)
                data_batch = next(batches)
            self.run_iter(data_batch)

            self._validate_if_due(self._iter, self._max_iters)

        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_iter(self, data_batch):
        self.runner.call_hook('before_train_iter', batch_idx=self._iter, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
        self._record_step()
        self.runner.call_hook('after_train_iter', batch_idx=self._iter, data_batch=data_batch, outputs=outputs)
        self._iter += 1

    def _position(self, last_step):
        return last_step['epoch'], last_step['batch']

    def _unrecorded_position(self):
        length = self._pass_length()
        epoch, done = divmod(self._iter, length) if length else (0, self._iter)
        print_log(
            f'ResumableIterBasedTrainLoop: the checkpoint holds no data-loader position or random state (written '
            f'by another train loop); training continues at batch {done + 1} of pass {epoch + 1} over the data, '
            f'with fresh random states',
            logger='current', level=logging.WARNING)
        return epoch, done, None, None
