"""The resumable train loops in a toy run: resume at the next batch with the random states, and refuse a
checkpoint of a run of another shape."""
import re

import pytest
import torch
from mmengine.hooks import Hook
from toy_training import build_runner

from vmamba_mm.compat import trusted_checkpoint_globals
from vmamba_mm.engine import ResumeError, loops

VALUES = [1.0, 2.0, 3.0, 4.0]  # 4 steps per epoch
LOOP = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)
ITER_LOOP = dict(type='ResumableIterBasedTrainLoop', max_iters=10)  # passes over the data end after steps 4 and 8
EVERY_3_STEPS = dict(type='AtomicCheckpointHook', interval=3, by_epoch=False, max_keep_ckpts=5)
EVERY_2_STEPS = dict(type='AtomicCheckpointHook', interval=2, by_epoch=False, max_keep_ckpts=5)


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


def _resumed(work_dir, saved, **kwargs):
    """A runner resuming from the checkpoint `work_dir`/`saved`, trained to the end."""
    runner = build_runner(work_dir, resume=True, load_from=str(work_dir / saved), **kwargs)
    with trusted_checkpoint_globals():
        runner.train()
    return runner


def _without_run_shape(path):
    """Make `path` a checkpoint as written before the run's shape was recorded."""
    with trusted_checkpoint_globals():
        checkpoint = torch.load(path, map_location='cpu')
    del checkpoint['message_hub']['runtime_info'][loops.RUN_SHAPE]
    torch.save(checkpoint, path)


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


def test_an_unrecorded_run_still_refuses_a_different_number_of_batches_per_epoch(tmp_path):
    with pytest.raises(Interrupt):  # checkpoint at step 3: epoch 1, batch 3
        _train(tmp_path, hooks=[InterruptAfter(3)])
    _without_run_shape(tmp_path / 'iter_3.pth')
    with pytest.raises(ResumeError, match=r'^the checkpoint was written after batch 3 of epoch 1, but the data '
                                          r'loader now has 2 batches per epoch: resume with the dataset and batch '
                                          r'size the run was started with$'):
        _train(tmp_path, values=[1.0, 2.0], resume=True, load_from=str(tmp_path / 'iter_3.pth'))


def test_an_unrecorded_run_resumes_exactly_with_a_warning(tmp_path, capsys):
    expected = _train(tmp_path / 'straight')
    with pytest.raises(Interrupt):
        _train(tmp_path / 'split', hooks=[InterruptAfter(7)])
    _without_run_shape(tmp_path / 'split' / 'iter_6.pth')
    resumed = _resumed(tmp_path / 'split', 'iter_6.pth', losses=VALUES, checkpoint=EVERY_3_STEPS, noisy=True,
                       train_cfg=LOOP, randomness=dict(seed=1))
    torch.testing.assert_close(resumed.model.w.detach(), expected, rtol=0, atol=0)
    logged = capsys.readouterr()
    assert 'ResumableEpochBasedTrainLoop: the checkpoint records no batch size, training set length, number of ' \
           'processes or learning-rate schedule (written before these were recorded); resuming without checking ' \
           'that they are unchanged' in logged.out + logged.err


@pytest.mark.parametrize('train_cfg, exact', [(ITER_LOOP, True), (dict(ITER_LOOP, type='IterBasedTrainLoop'), False)])
@pytest.mark.parametrize('saved', ['iter_4.pth', 'iter_6.pth'])  # the end of pass 1; pass 2, batch 2
# InfiniteSampler (mmseg's) makes one endless pass, drawing a new permutation after every 4 steps.
@pytest.mark.parametrize('sampler', ['DefaultSampler', 'InfiniteSampler'])
def test_iteration_loop_resumes_mid_pass_as_an_uninterrupted_run(tmp_path, train_cfg, exact, saved, sampler):
    common = dict(losses=VALUES, checkpoint=EVERY_2_STEPS, noisy=True, shuffle=True, randomness=dict(seed=1),
                  sampler=sampler)
    straight = build_runner(tmp_path / 'straight', custom_hooks=[], train_cfg=ITER_LOOP, **common)
    straight.train()
    with pytest.raises(Interrupt):
        build_runner(tmp_path / 'split', custom_hooks=[InterruptAfter(7)], train_cfg=train_cfg, **common).train()

    resumed = _resumed(tmp_path / 'split', saved, train_cfg=train_cfg, **common)
    assert resumed.iter == 10
    if exact:
        torch.testing.assert_close(resumed.model.w.detach(), straight.model.w.detach(), rtol=0, atol=0)
    else:  # mmengine's loop finds its place again but draws other random numbers after the resume
        assert not torch.allclose(resumed.model.w.detach(), straight.model.w.detach())


@pytest.mark.parametrize('sampler', ['DefaultSampler', 'InfiniteSampler'])
def test_iteration_loop_reads_the_same_batches_through_worker_processes(tmp_path, sampler):
    # mmengine's loop opens an iterator over the loader when it is built, and its workers start drawing from the
    # sampler; an InfiniteSampler's one index stream must survive that iterator being closed.
    common = dict(losses=VALUES, shuffle=True, randomness=dict(seed=1), sampler=sampler, train_cfg=ITER_LOOP)
    in_process = build_runner(tmp_path / 'in_process', **common)
    in_process.train()
    with_workers = build_runner(tmp_path / 'workers', num_workers=1, **common)
    with_workers.train()
    assert with_workers.iter == 10
    torch.testing.assert_close(with_workers.model.w.detach(), in_process.model.w.detach(), rtol=0, atol=0)


def test_iteration_loop_continues_a_checkpoint_of_mmengines_loop_at_its_position(tmp_path, capsys):
    common = dict(losses=VALUES, checkpoint=EVERY_3_STEPS, shuffle=True, randomness=dict(seed=1))
    straight = build_runner(tmp_path / 'straight', train_cfg=ITER_LOOP, **common)
    straight.train()
    mmengine_loop = dict(ITER_LOOP, type='IterBasedTrainLoop')
    with pytest.raises(Interrupt):  # the last checkpoint: step 6
        build_runner(tmp_path / 'split', custom_hooks=[InterruptAfter(7)], train_cfg=mmengine_loop, **common).train()

    resumed = _resumed(tmp_path / 'split', 'iter_6.pth', train_cfg=ITER_LOOP, **common)
    # Without noise the random states do not matter: the data order alone decides the weights.
    assert resumed.iter == 10
    torch.testing.assert_close(resumed.model.w.detach(), straight.model.w.detach(), rtol=0, atol=0)
    logged = capsys.readouterr()
    assert 'ResumableIterBasedTrainLoop: the checkpoint holds no data-loader position or random state (written by ' \
           'another train loop); training continues at batch 3 of pass 2 over the data, with fresh random ' \
           'states' in logged.out + logged.err


def test_a_longer_or_shorter_run_on_the_same_schedule_resumes(tmp_path):
    """The end of training is not part of the run's shape: a run stopped early continues to a later end."""
    expected = _train(tmp_path / 'straight')
    common = dict(losses=VALUES, checkpoint=EVERY_3_STEPS, noisy=True, randomness=dict(seed=1))
    build_runner(tmp_path / 'first_epoch', train_cfg=dict(LOOP, max_epochs=1), **common).train()
    resumed = _resumed(tmp_path / 'first_epoch', 'iter_3.pth', train_cfg=LOOP, **common)
    assert resumed.iter == 8
    torch.testing.assert_close(resumed.model.w.detach(), expected, rtol=0, atol=0)


SCHEDULE = [dict(type='MultiStepLR', milestones=[4], by_epoch=False)]
# What the resumed run changes, and the part of the ResumeError that must name it.
CHANGES = {
    'batch size': (dict(batch_size=2), 'batch size per process was 1, is now 2: resume with --cfg-options '
                                       'train_dataloader.batch_size=1'),
    'dataset': (dict(losses=VALUES * 2), 'training set length was 4, is now 8: resume with the training set the '
                                         'run was started with (train_dataloader.dataset: data_root, ann_file, '
                                         'indices, filter_cfg)'),
    'world size': ({}, 'number of processes was 1, is now 2: resume with 1 process (tools/train.py without a '
                       'launcher)'),
    'schedule': (dict(param_scheduler=[dict(SCHEDULE[0], milestones=[6])]),
                 'the learning-rate schedule changed (param_scheduler[0].milestones [4] -> [6]): restore the '
                 'param_scheduler the run was started with'),
    'loop': (dict(train_cfg=dict(type='ResumableIterBasedTrainLoop', max_iters=8)),
             "train loop was ResumableEpochBasedTrainLoop, is now ResumableIterBasedTrainLoop: resume with "
             "train_cfg.type='ResumableEpochBasedTrainLoop'"),
}


@pytest.mark.parametrize('change', sorted(CHANGES))
def test_resume_refuses_a_run_of_another_shape_and_names_the_change(tmp_path, monkeypatch, change):
    original = dict(losses=VALUES, checkpoint=EVERY_3_STEPS, noisy=True, train_cfg=LOOP, randomness=dict(seed=1),
                    param_scheduler=SCHEDULE)
    with pytest.raises(Interrupt):
        build_runner(tmp_path, custom_hooks=[InterruptAfter(4)], **original).train()
    files = {path.name: path.read_bytes() for path in tmp_path.glob('*.pth')}
    changed, named = CHANGES[change]
    if change == 'world size':
        monkeypatch.setattr(loops, 'get_world_size', lambda: 2)

    with pytest.raises(ResumeError) as error:
        _resumed(tmp_path, 'iter_3.pth', **{**original, **changed})
    assert str(error.value) == (
        "cannot resume: this run differs from the checkpoint's, and continuing would silently change its result. "
        f"{named}. To train from the checkpoint's weights with the new settings instead, start a new run in another "
        'work dir with --cfg-options load_from=CHECKPOINT (without --resume)')
    assert {path.name: path.read_bytes() for path in tmp_path.glob('*.pth')} == files


def test_every_change_is_named_at_once(tmp_path):
    with pytest.raises(Interrupt):
        _train(tmp_path, hooks=[InterruptAfter(3)])
    with pytest.raises(ResumeError, match=re.escape('batch size per process was 1, is now 2: resume with --cfg-options '
                                                    'train_dataloader.batch_size=1; training set length was 4, is '
                                                    'now 2:')):
        _train(tmp_path, values=[1.0, 2.0], batch_size=2, resume=True, load_from=str(tmp_path / 'iter_3.pth'))
