"""tools/slurm_train.sh and tools/slurm_test.sh through a real SLURM cluster on localhost: 2 tasks on
one CPU-only node (GRES=none), mmengine's slurm launcher, the gloo backend."""
import json
import re
import subprocess
import time

import pytest

from launch_paths import PROBE_CONFIG, REPO_ROOT

pytestmark = pytest.mark.integration

JOB_TIMEOUT = 600  # seconds


@pytest.fixture
def slurm_env(slurm_cluster, job_env):
    return {**slurm_cluster.env(job_env), 'GPUS': '2', 'GPUS_PER_NODE': '2', 'CPUS_PER_TASK': '1', 'GRES': 'none'}


def run(command, env):
    return subprocess.run([str(part) for part in command], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=JOB_TIMEOUT)


def describe(result):
    return f'exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}'


def test_train_then_test_with_two_tasks(slurm_cluster, slurm_env, probe_options, tmp_path):
    work_dir = tmp_path / 'work'
    train = run(['bash', 'tools/slurm_train.sh', slurm_cluster.partition, 'vmamba-train', PROBE_CONFIG, work_dir,
                 *probe_options, 'train_dataloader.batch_size=16'], slurm_env)
    assert train.returncode == 0, describe(train)
    # Both tasks trained, in one process group: rank 0's log shows mmengine's world size.
    for rank in (0, 1):
        assert len(json.loads((work_dir / f'losses_rank{rank}.json').read_text())) == 16
    assert re.search(r'launcher: slurm\s+Distributed training: True\s+GPU number: 2', train.stdout), describe(train)
    checkpoint = work_dir / 'epoch_2.pth'
    assert checkpoint.is_file()

    test = run(['bash', 'tools/slurm_test.sh', slurm_cluster.partition, 'vmamba-test', PROBE_CONFIG, checkpoint,
                '--work-dir', tmp_path / 'test', *probe_options], slurm_env)
    assert test.returncode == 0, describe(test)
    assert re.search(r'^accuracy/top1: [0-9.]+$', test.stdout, re.MULTILINE), describe(test)


def test_a_dead_task_ends_the_job_and_is_named(slurm_cluster, slurm_env, probe_options, tmp_path):
    start = time.monotonic()
    result = run(['bash', 'tools/slurm_train.sh', slurm_cluster.partition, 'vmamba-dies', PROBE_CONFIG, tmp_path,
                  *probe_options, 'train_dataloader.batch_size=16'], {**slurm_env, 'DIST_PROBE_EXIT_RANK': '1'})
    elapsed = time.monotonic() - start
    # --kill-on-bad-exit=1 ends task 0 too; srun then reports the SIGTERM of the survivor, not 3.
    assert result.returncode != 0
    assert 'task 1: Exited with exit code 3' in result.stderr, describe(result)
    assert elapsed < 300  # start-up included; the process group's own timeout is 30 minutes
