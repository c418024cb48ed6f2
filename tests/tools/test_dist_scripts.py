"""The launch scripts' command lines: what tools/slurm_*.sh hand to srun and what tools/dist_*.sh refuse.

srun is replaced by a script that prints its arguments, so the multi-node arithmetic can be checked on
one machine; tests/integration runs the same scripts through a real SLURM cluster and real torchrun.
"""
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def srun_arguments(tmp_path):
    """Runs a launch script with an srun that prints one argument per line; returns them as a list."""
    (tmp_path / 'srun').write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (tmp_path / 'srun').chmod(0o755)

    def launch(script, *args, **env):
        result = subprocess.run(['bash', f'tools/{script}', *map(str, args)], cwd=REPO_ROOT, capture_output=True,
                                text=True, env={**os.environ, 'PATH': f'{tmp_path}{os.pathsep}{os.environ["PATH"]}',
                                                'PYTHON': 'python', **env})
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    return launch


def test_slurm_train_spans_nodes_when_gpus_exceed_one_node(srun_arguments):
    arguments = srun_arguments('slurm_train.sh', 'gpu', 'vmamba-t', 'configs/x.py', 'work_dirs/x', '--amp',
                               GPUS='16', GPUS_PER_NODE='8', CPUS_PER_TASK='4')
    options, command = arguments[:arguments.index('bash')], arguments[arguments.index('bash'):]
    assert options == ['--partition=gpu', '--job-name=vmamba-t', '--nodes=2', '--ntasks=16', '--ntasks-per-node=8',
                       '--cpus-per-task=4', '--gres=gpu:8', '--kill-on-bad-exit=1']
    # bash -c 'export MASTER_PORT=...; exec "$@"' slurm-task python -u tools/train.py ...
    assert command[4:] == ['python', '-u', 'tools/train.py', 'configs/x.py', '--work-dir', 'work_dirs/x', '--amp',
                           '--launcher', 'slurm']


def test_slurm_defaults_fill_one_node_of_eight(srun_arguments):
    arguments = srun_arguments('slurm_train.sh', 'gpu', 'job', 'configs/x.py')
    assert {'--nodes=1', '--ntasks=8', '--ntasks-per-node=8', '--cpus-per-task=5', '--gres=gpu:8'} <= set(arguments)
    assert '--work-dir' not in arguments


def test_slurm_small_job_asks_for_its_gpus_only(srun_arguments):
    arguments = srun_arguments('slurm_test.sh', 'gpu', 'job', 'configs/x.py', 'x.pth', '--tta', GPUS='2')
    assert {'--nodes=1', '--ntasks=2', '--ntasks-per-node=2', '--gres=gpu:2'} <= set(arguments)
    assert arguments[-6:] == ['tools/test.py', 'configs/x.py', 'x.pth', '--tta', '--launcher', 'slurm']


def test_slurm_gres_none_and_extra_srun_args(srun_arguments):
    arguments = srun_arguments('slurm_train.sh', 'cpu', 'job', 'configs/x.py', GPUS='2', GRES='none',
                               SRUN_ARGS='--time=1:00:00 --quotatype=auto')
    assert not any(argument.startswith('--gres') for argument in arguments)
    assert arguments[arguments.index('--kill-on-bad-exit=1') + 1:][:2] == ['--time=1:00:00', '--quotatype=auto']


def test_slurm_typed_gres(srun_arguments):
    assert '--gres=gpu:a100:4' in srun_arguments('slurm_train.sh', 'gpu', 'job', 'configs/x.py', GPUS='4',
                                                 GRES='gpu:a100:4')


LAUNCH_VARIABLES = ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'PORT', 'GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK')


@pytest.mark.parametrize('script, args, env, message', [
    ('dist_train.sh', ['configs/x.py'], {}, 'usage: '),
    ('dist_test.sh', ['configs/x.py', 'x.pth'], {}, 'usage: '),
    ('slurm_train.sh', ['gpu', 'job'], {}, 'usage: '),
    ('slurm_test.sh', ['gpu', 'job', 'configs/x.py'], {}, 'usage: '),
    ('dist_train.sh', ['configs/x.py', '0'], {}, "NPROC (processes per node) must be an integer >= 1, got '0'"),
    ('dist_train.sh', ['configs/x.py', 'two'], {}, "got 'two'"),
    ('dist_train.sh', ['configs/x.py', '2'], {'NNODES': '2'}, 'NNODES=2 needs MASTER_ADDR'),
    ('dist_train.sh', ['configs/x.py', '2'], {'NNODES': '2', 'NODE_RANK': '2', 'MASTER_ADDR': 'node0'},
     'NODE_RANK=2 must be below NNODES=2'),
    ('slurm_train.sh', ['gpu', 'job', 'configs/x.py'], {'GPUS': '0'}, "GPUS must be an integer >= 1, got '0'"),
    ('slurm_train.sh', ['gpu', 'job', 'configs/x.py'], {'GPUS_PER_NODE': '0'}, 'GPUS_PER_NODE must be'),
    ('slurm_train.sh', ['gpu', 'job', 'configs/x.py'], {'CPUS_PER_TASK': 'x'}, 'CPUS_PER_TASK must be'),
])
def test_bad_arguments_are_refused_before_launching(script, args, env, message):
    # Only the case's own launch variables: one left in this process's environment would change the case.
    inherited = {name: value for name, value in os.environ.items() if name not in LAUNCH_VARIABLES}
    result = subprocess.run(['bash', f'tools/{script}', *args], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**inherited, **env})
    assert result.returncode == 2
    assert message in result.stderr
