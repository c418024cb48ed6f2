"""Hooks that keep a long run's progress safe.

`AtomicCheckpointHook` never leaves a half-written checkpoint or a `last_checkpoint` pointer to a
file that is not there, whenever the process is killed. `NonFiniteLossHook` stops a run whose loss
turns NaN/inf before that step reaches the weights, saying where it happened and what to try.
"""
import functools
import glob
import logging
import os
import os.path as osp
import shutil

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

STAGING_SUFFIX = '.partial'


def publish(staging, target):
    """Move a fully written `staging` file over `target`: readers see the old file or the new one.

    The data is flushed to disk before the rename and the rename before returning, so an OS crash
    cannot leave an empty file under the final name either."""
    with open(staging, 'rb') as file:
        os.fsync(file.fileno())
    os.replace(staging, target)
    directory = os.open(osp.dirname(osp.abspath(target)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def staging_path(path):
    """The hidden sibling a file is written to before `publish` renames it into place."""
    return osp.join(osp.dirname(path), f'.{osp.basename(path)}{STAGING_SUFFIX}')


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (full disk, quota, permissions); earlier ones are untouched."""


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's `CheckpointHook` (same arguments) with all-or-nothing writes.

    mmengine writes a checkpoint in place, removes the oldest kept checkpoint before writing the new
    one and rewrites `last_checkpoint` in place. A kill in the middle (preemption, OOM killer) can leave
    a truncated checkpoint, or, with ``max_keep_ckpts=1``, a `last_checkpoint` naming a removed file:
    `--resume` then has nothing to continue from. Here the checkpoint is written to a hidden sibling
    and renamed into place, then `last_checkpoint` is replaced the same way, and only then are
    outdated checkpoints removed, so `last_checkpoint` always names a complete file. Staging files
    of a killed save are removed when training starts again; a save that fails (a full disk) removes
    its own and raises :class:`CheckpointSaveError` naming the checkpoint that is still intact.

    Object stores (s3, petrel, ...) publish an upload only when it is complete; for them this hook
    writes as mmengine's does.
    """

    def before_train(self, runner):
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            for leftover in glob.glob(osp.join(glob.escape(self.out_dir), f'.*{STAGING_SUFFIX}')):
                os.remove(leftover)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        outdated = self._keep(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        staging = staging_path(self.last_ckpt)
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            runner.save_checkpoint(
                self.out_dir,
                osp.basename(staging),
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if not is_main_process():
                return
            publish(staging, self.last_ckpt)
            with open(staging_path(pointer), 'w') as file:
                file.write(self.last_ckpt)
            publish(staging_path(pointer), pointer)
        except OSError as error:  # typically a full disk or quota: free the space the partial files took
            for partial in (staging, staging_path(pointer)):
                if osp.exists(partial):
                    os.remove(partial)
            raise CheckpointSaveError(
                f'checkpoint {self.last_ckpt} could not be saved ({error.strerror or error}); '
                f'{self._previous(pointer)}. Free space in {self.out_dir} and continue with --resume') from error

        if outdated is not None and outdated != self.last_ckpt:
            if osp.isdir(outdated):
                shutil.rmtree(outdated)
            elif osp.isfile(outdated):
                os.remove(outdated)

    @staticmethod
    def _previous(pointer):
        """What `--resume` will find, for the message of a failed save."""
        if not osp.isfile(pointer):
            return 'no earlier checkpoint of this run was written'
        with open(pointer) as file:
            return f'last_checkpoint still names {file.read().strip()}, which is intact'

    def _keep(self, runner, step):
        """Add `step` to the kept checkpoints; the path of the one that falls out, or None."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return None
        dropped = self.keep_ckpt_ids.popleft() if len(self.keep_ckpt_ids) == self.max_keep_ckpts else None
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return None if dropped is None else self.file_backend.join_path(self.out_dir,
                                                                        self.filename_tmpl.format(dropped))


def _count_non_finite(value):
    """NaN/inf entries of the floating-point tensors in a tensor, or in a list, tuple or dict of them."""
    if isinstance(value, torch.Tensor):
        return int((~torch.isfinite(value)).sum()) if value.is_floating_point() else 0
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(_count_non_finite(item) for item in value)
    return 0


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Checks every training loss before it reaches the optimizer.

    A NaN/inf loss would turn every weight into NaN at the next step, and every later checkpoint
    with it. With ``on_non_finite='stop'`` (default) training stops with
    :class:`NonFiniteLossError`, naming the iteration, the loss and the last finite loss, with hints;
    the weights are untouched by that step. With ``'skip'`` the step is dropped (no backward, no
    update; a warning names it) and training goes on, unless ``max_consecutive_skips`` steps in a row
    are dropped, which stops training as ``'stop'`` does. Either way, when the batch's inputs hold NaN/inf after
    the data preprocessor (broken images, a normalisation ``std`` of 0), the message says how many: the model does
    not check its inputs while training, which would read a flag back from the GPU at every step.

    With several processes, all of them skip or stop together when any one sees a non-finite loss.
    With gradient accumulation, a skipped step does not count towards ``accumulative_counts``.

    Args:
        on_non_finite (str): ``'stop'`` or ``'skip'``.
        max_consecutive_skips (int): With ``'skip'``, how many steps in a row may be dropped.
    """

    ACTIONS = ('stop', 'skip')

    def __init__(self, on_non_finite='stop', max_consecutive_skips=10):
        if on_non_finite not in self.ACTIONS:
            raise ValueError(f"NonFiniteLossHook: on_non_finite must be one of {self.ACTIONS}, got {on_non_finite!r}")
        if max_consecutive_skips < 1:
            raise ValueError(f'NonFiniteLossHook: max_consecutive_skips must be at least 1, got {max_consecutive_skips}')
        self.on_non_finite = on_non_finite
        self.max_consecutive_skips = max_consecutive_skips
        self.last_finite = None  # (iteration, loss tensor)
        self.skipped_in_a_row = 0
        self.skipped = 0
        self.data_batch = None

    def before_train(self, runner):
        wrappers = runner.optim_wrapper.values() if isinstance(runner.optim_wrapper,
                                                              OptimWrapperDict) else [runner.optim_wrapper]
        for wrapper in wrappers:
            wrapper.update_params = self._checked(runner, wrapper.update_params)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.data_batch = data_batch  # read again only to explain a non-finite loss

    def after_train(self, runner):
        if self.skipped:
            print_log(f'NonFiniteLossHook: {self.skipped} training steps with a non-finite loss were skipped',
                      logger='current', level=logging.WARNING)

    def _checked(self, runner, update_params):

        @functools.wraps(update_params)
        def update_params_if_finite(loss, *args, **kwargs):
            if self._all_finite(loss):
                self.last_finite = (runner.iter + 1, loss.detach())
                self.skipped_in_a_row = 0
                return update_params(loss, *args, **kwargs)
            self._handle(runner, loss)

        return update_params_if_finite

    @staticmethod
    def _all_finite(loss):
        non_finite = (~torch.isfinite(loss.detach())).sum()
        if get_world_size() > 1:
            all_reduce(non_finite)
        return non_finite.item() == 0

    def _non_finite_inputs(self, runner):
        """NaN/inf values in the current batch's inputs after the model's data preprocessor (0 when it has none).

        The preprocessor runs in its evaluation mode: normalisation is where a non-finite input comes from, and its
        training-only batch augments would draw from the random state that the rest of training uses."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        preprocessor = getattr(model, 'data_preprocessor', None)
        if self.data_batch is None or preprocessor is None:
            return 0
        with torch.no_grad():
            return _count_non_finite(preprocessor(self.data_batch, False).get('inputs'))

    def _handle(self, runner, loss):
        iteration = runner.iter + 1
        where = f'iteration {iteration}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where += f' (epoch {runner.epoch + 1})'
        value = loss.detach().float()
        shown = value.item() if value.numel() == 1 else value.flatten().tolist()[:4]
        if self.last_finite is None:
            last = 'no step of this run had a finite loss yet'
        else:
            last = f'the last finite loss was {self.last_finite[1].float().mean().item():.6g} at iteration ' \
                   f'{self.last_finite[0]}'
        inputs = self._non_finite_inputs(runner)
        if inputs:
            last += f"; the batch's inputs hold {inputs} non-finite value{'s' if inputs > 1 else ''} (NaN/inf) " \
                    'after the data preprocessor: check the data and its normalisation (a std of 0 divides by zero)'
        if self.on_non_finite == 'skip':
            self.skipped += 1
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row <= self.max_consecutive_skips:
                print_log(f'NonFiniteLossHook: loss is {shown} at {where}; step skipped ({last})',
                          logger='current', level=logging.WARNING)
                return
            reason = f'{self.skipped_in_a_row} steps in a row had a non-finite loss (max_consecutive_skips=' \
                     f'{self.max_consecutive_skips}); the latest, {shown}, at {where}'
        else:
            reason = f'loss is {shown} at {where}'
        raise NonFiniteLossError(
            f'{reason}; {last}. Training stopped before this step changed the weights. What to try: '
            'with float16 mixed precision (--amp on a GPU), train in bfloat16 '
            "(--cfg-options optim_wrapper.dtype=bfloat16) or float32 (without --amp), and keep VMamba's "
            'scan output in float32 (the default); lower the learning rate or clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=5.0)); check the data for broken images. To skip '
            "such steps instead, give NonFiniteLossHook on_non_finite='skip' (e.g. --cfg-options "
            'default_hooks.non_finite_loss.on_non_finite=skip).')
