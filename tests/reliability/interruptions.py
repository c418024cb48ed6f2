"""Test-only hooks that interrupt a run (imported by configs via custom_imports)."""
import os
import signal
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SigkillAtIteration(Hook):
    """SIGKILLs its own process once `iteration` training steps are done (no cleanup, no atexit)."""

    priority = 'LOWEST'  # after the checkpoint hook of the same iteration

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class SlowSteps(Hook):
    """Sleeps after every training step, so that a signal sent from outside arrives while training runs."""

    def __init__(self, seconds):
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        time.sleep(self.seconds)


@HOOKS.register_module()
class SigintAtTestIteration(Hook):
    """Sends its own process SIGINT (what Ctrl-C in a terminal does) after test batch `iteration`."""

    def __init__(self, iteration):
        self.iteration = iteration

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if batch_idx + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGINT)
