"""ForeachExponentialMovingAverage: mmengine's EMA, step for step, in multi-tensor ops."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import EMAHook
from mmengine.model import ExponentialMovingAverage

from vmamba_mm.engine import ForeachExponentialMovingAverage


def small_model():
    torch.manual_seed(0)
    # BatchNorm brings float buffers and an integer one (num_batches_tracked); the half-precision layer a second
    # dtype group.
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model[3].half()
    return model


def train_step(model, step):
    """Change every parameter and buffer, differently at each step."""
    with torch.no_grad():
        for index, parameter in enumerate(model.parameters()):
            parameter.add_(torch.randn_like(parameter) * (index + 1) * 0.1)
    model.train()
    model[1](torch.randn(16, 8) + step)


@pytest.mark.parametrize('update_buffers', [True, False])
@pytest.mark.parametrize('interval', [1, 3])
def test_matches_mmengine_ema_bit_for_bit(update_buffers, interval):
    model = small_model()
    reference = ExponentialMovingAverage(model, momentum=0.1, interval=interval, update_buffers=update_buffers)
    foreach = ForeachExponentialMovingAverage(model, momentum=0.1, interval=interval, update_buffers=update_buffers)
    torch.manual_seed(1)
    for step in range(7):
        train_step(model, step)
        reference.update_parameters(model)
        foreach.update_parameters(model)
    expected, actual = reference.state_dict(), foreach.state_dict()
    assert list(actual) == list(expected)  # the same checkpoint entries, `steps` included
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name
    # The average moved away from both its start and the model: the comparison above is not between copies.
    assert not torch.equal(actual['module.0.weight'], model[0].weight.detach())
    assert int(actual['steps']) == 7


def test_integer_buffers_are_copied_once_and_never_averaged():
    model = small_model()
    ema = ForeachExponentialMovingAverage(model, momentum=0.5, update_buffers=True)
    train_step(model, 0)
    ema.update_parameters(model)
    assert int(ema.module[1].num_batches_tracked) == 1
    train_step(model, 1)
    ema.update_parameters(model)
    assert int(ema.module[1].num_batches_tracked) == 1  # as in mmengine: not a float, not averaged
    assert int(model[1].num_batches_tracked) == 2


def test_is_the_ema_type_of_mmengines_hook():
    model = small_model()
    hook = EMAHook(ema_type='ForeachExponentialMovingAverage', momentum=0.1)

    class FakeRunner:
        pass

    runner = FakeRunner()
    runner.model = copy.deepcopy(model)
    hook.before_run(runner)
    assert type(hook.ema_model) is ForeachExponentialMovingAverage
