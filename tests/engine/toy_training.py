"""A tiny mmengine training run (one weight vector, a scripted loss per step) for tests of hooks and loops.

Also a script: ``python toy_training.py WORK_DIR HOOK_TYPE KILL_AT_SAVE`` trains 3 steps with a checkpoint
every step (max_keep_ckpts=1) and SIGKILLs itself half-way through writing checkpoint number KILL_AT_SAVE
(`run_killed_during_save` runs it).
"""
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner

import vmamba_mm  # noqa: F401 (registers the hooks under test)


class ScriptedLoss(BaseModel):
    """loss = value * w.sum(), `value` read from the batch: with SGD(lr) every step moves w by -lr * value.

    With `noisy`, the loss is scaled by a torch and a NumPy random draw (stand-ins for stochastic depth
    and random augmentation)."""

    def __init__(self, size=3, noisy=False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(size))
        self.noisy = noisy

    def forward(self, inputs, data_samples=None, mode='loss'):
        loss = inputs.sum() * self.w.sum()
        if self.noisy:
            loss = loss * (1 + torch.rand(()) + float(np.random.rand()))
        return dict(loss=loss)


def build_runner(work_dir, losses, custom_hooks=(), checkpoint=None, lr=0.1, max_epochs=1, noisy=False,
                 train_cfg=None, shuffle=False, batch_size=1, param_scheduler=None, sampler='DefaultSampler', num_workers=0,
                 **kwargs):
    """A Runner stepping once per `batch_size` entries of `losses` (in order, unless `shuffle`) per epoch.

    `param_scheduler` is also put in the runner's config, as `Runner.from_cfg` (which the tools use) does."""
    return Runner(
        model=ScriptedLoss(noisy=noisy),
        work_dir=str(work_dir),
        experiment_name=f'toy_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=[dict(inputs=torch.tensor(float(value))) for value in losses],
                              sampler=dict(type=sampler, shuffle=shuffle), batch_size=batch_size,
                              collate_fn=dict(type='default_collate'), num_workers=num_workers),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        train_cfg=train_cfg or dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=list(custom_hooks),
        default_scope='mmengine',
        log_level='WARNING',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        param_scheduler=param_scheduler,
        cfg=dict(param_scheduler=param_scheduler),
        **kwargs,
    )


def _kill_half_way_through_save(number):
    """Make the `number`-th file write of mmengine's local backend stop half-way with a SIGKILL."""
    from mmengine.fileio import LocalBackend

    put, calls = LocalBackend.put, []

    def put_then_die(self, obj, filepath):
        calls.append(filepath)
        if len(calls) < number:
            return put(self, obj, filepath)
        with open(filepath, 'wb') as file:
            file.write(obj[:len(obj) // 2])
            file.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    LocalBackend.put = put_then_die


def run_killed_during_save(work_dir, hook_type, kill_at_save):
    """This file as a script (see the module's docstring) in a process of its own; returns the CompletedProcess."""
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get('PYTHONPATH')])))
    return subprocess.run([sys.executable, __file__, str(work_dir), hook_type, str(kill_at_save)], cwd=work_dir,
                          env=env, capture_output=True, text=True, timeout=300)


if __name__ == '__main__':
    work_dir, hook_type, kill_at_save = sys.argv[1], sys.argv[2], int(sys.argv[3])
    _kill_half_way_through_save(kill_at_save)
    build_runner(work_dir, [1.0, 2.0, 3.0],
                 checkpoint=dict(type=hook_type, interval=1, by_epoch=False, max_keep_ckpts=1)).train()
