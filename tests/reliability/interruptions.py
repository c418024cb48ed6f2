"""Test-only hooks that interrupt a training run the hard way (imported by configs via custom_imports)."""
import os
import signal

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
