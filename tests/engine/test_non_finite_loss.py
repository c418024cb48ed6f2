"""A NaN/inf loss stops training before it reaches the weights (or, when asked, the step is skipped)."""
import math
import re

import pytest
import torch
from toy_training import build_runner

from vmamba_mm.engine import NonFiniteLossError, NonFiniteLossHook


def _weights(runner):
    return runner.model.w.detach().clone()


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_stop_names_the_iteration_the_last_finite_loss_and_what_to_try(tmp_path, bad):
    seen = []

    class Spy(NonFiniteLossHook.__base__):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            seen.append(_weights(runner))

    runner = build_runner(tmp_path, [1.0, 0.5, bad, 2.0], custom_hooks=[dict(type='NonFiniteLossHook'), Spy()])
    with pytest.raises(NonFiniteLossError) as error:
        runner.train()
    message = str(error.value)
    # loss = value * w.sum(); after two SGD steps w = 1 - 0.1 * 1.5 = 0.85, so the last finite loss was 0.5 * (3 * 0.9).
    # The toy's input is the scripted value, so the batch's inputs hold the non-finite value.
    assert message.startswith(f'loss is {bad * 3 * 0.85} at iteration 3 (epoch 1); the last finite loss was 1.35 '
                              "at iteration 2; the batch's inputs hold 1 non-finite value (NaN/inf) after the data "
                              'preprocessor: check the data and its normalisation (a std of 0 divides by zero). '
                              'Training stopped before this step changed the weights.')
    for hint in ('bfloat16', 'optim_wrapper.clip_grad', "on_non_finite='skip'", 'scan output in float32'):
        assert hint in message
    assert len(seen) == 2
    torch.testing.assert_close(_weights(runner), seen[-1], rtol=0, atol=0)
    torch.testing.assert_close(_weights(runner), torch.full((3, ), 0.85))


def test_a_first_step_with_a_non_finite_loss_says_there_was_no_finite_one(tmp_path):
    runner = build_runner(tmp_path, [math.nan], custom_hooks=[dict(type='NonFiniteLossHook')])
    with pytest.raises(NonFiniteLossError, match=r'at iteration 1 \(epoch 1\); no step of this run had a finite '
                                                  r"loss yet; the batch's inputs hold 1 non-finite value "):
        runner.train()
    torch.testing.assert_close(_weights(runner), torch.ones(3))


def test_finite_inputs_are_not_blamed_for_a_diverging_loss(tmp_path):
    # w = 1 - 0.1 * 1e38 after the first step, so the second loss, 1e38 * 3 * w, overflows from finite inputs.
    runner = build_runner(tmp_path, [1e38, 1e38], custom_hooks=[dict(type='NonFiniteLossHook')])
    with pytest.raises(NonFiniteLossError) as error:
        runner.train()
    assert str(error.value).startswith('loss is -inf at iteration 2 (epoch 1); the last finite loss was 3e+38 at '
                                       'iteration 1. Training stopped')


def test_without_the_hook_a_nan_loss_poisons_the_weights(tmp_path):
    runner = build_runner(tmp_path, [1.0, math.nan, 2.0])
    runner.train()
    assert torch.isnan(_weights(runner)).all()


def test_skip_drops_exactly_the_non_finite_steps(tmp_path, capsys):
    runner = build_runner(tmp_path, [1.0, math.nan, 2.0, math.inf, 3.0],
                          custom_hooks=[dict(type='NonFiniteLossHook', on_non_finite='skip')])
    runner.train()
    torch.testing.assert_close(_weights(runner), torch.full((3, ), 1 - 0.1 * (1.0 + 2.0 + 3.0)))
    hook = next(hook for hook in runner.hooks if isinstance(hook, NonFiniteLossHook))
    assert hook.skipped == 2
    logged = capsys.readouterr()
    text = logged.out + logged.err
    assert 'NonFiniteLossHook: loss is nan at iteration 2 (epoch 1); step skipped (the last finite loss was 3 at ' \
           "iteration 1; the batch's inputs hold 1 non-finite value (NaN/inf) after the data preprocessor" in text
    assert 'NonFiniteLossHook: 2 training steps with a non-finite loss were skipped' in text


def test_skip_gives_up_after_too_many_non_finite_steps_in_a_row(tmp_path):
    runner = build_runner(tmp_path, [1.0, math.nan, math.nan, math.nan],
                          custom_hooks=[dict(type='NonFiniteLossHook', on_non_finite='skip', max_consecutive_skips=2)])
    with pytest.raises(NonFiniteLossError, match=r'^3 steps in a row had a non-finite loss \(max_consecutive_skips=2\); '
                                                  r'the latest, nan, at iteration 4 \(epoch 1\); the last finite loss '
                                                  r"was 3 at iteration 1; the batch's inputs hold 1 non-finite "):
        runner.train()
    torch.testing.assert_close(_weights(runner), torch.full((3, ), 0.9))


@pytest.mark.parametrize('kwargs, message', [
    (dict(on_non_finite='ignore'), "on_non_finite must be one of ('stop', 'skip'), got 'ignore'"),
    (dict(max_consecutive_skips=0), 'max_consecutive_skips must be at least 1, got 0'),
])
def test_bad_hook_options(kwargs, message):
    with pytest.raises(ValueError, match=f'^NonFiniteLossHook: {re.escape(message)}$'):
        NonFiniteLossHook(**kwargs)
