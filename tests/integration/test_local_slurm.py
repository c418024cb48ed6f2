"""tools/slurm_train.sh and tools/slurm_test.sh through a real SLURM cluster on localhost (two slurmd node
names on one host, CPU only, GRES=none): mmengine's slurm launcher, the gloo backend. Training spans both
nodes (GPUS > GPUS_PER_NODE) and ends with the weights of one process on the same global batch (see
launch_runs.py); testing and the failure case run 2 tasks on one node."""
import re
import time

import pytest

from launch_paths import PROBE_CONFIG
from launch_runs import assert_losses_match, assert_weights_match, describe, rank_losses, rank_placements, run, \
    train_options

pytestmark = pytest.mark.integration


@pytest.fixture
def slurm_env(slurm_cluster, job_env):
    """2 tasks on one node."""
    return {**slurm_cluster.env(job_env), 'GPUS': '2', 'GPUS_PER_NODE': '2', 'CPUS_PER_TASK': '1', 'GRES': 'none'}


def test_train_on_two_nodes_then_test_on_one(slurm_cluster, slurm_env, probe_options, single_process_run, tmp_path):
    work_dir = tmp_path / 'work'
    train = run(['bash', 'tools/slurm_train.sh', slurm_cluster.partition, 'vmamba-train', PROBE_CONFIG, work_dir,
                 *train_options(2, probe_options)], {**slurm_env, 'GPUS_PER_NODE': '1'})
    assert train.returncode == 0, describe(train)
    # Both tasks trained, in one process group: rank 0's log shows mmengine's world size.
    for losses in rank_losses(work_dir, 2):
        assert len(losses) == 16
    assert re.search(r'launcher: slurm\s+Distributed training: True\s+GPU number: 2', train.stdout), describe(train)
    # One task per node, and the rendezvous at the job's first host, as the launcher reads it from SLURM.
    placements = rank_placements(work_dir, 2)
    assert [(place['rank'], place['SLURM_NODEID'], place['LOCAL_RANK']) for place in placements] == [
        (0, '0', '0'), (1, '1', '0')]
    assert {place['SLURMD_NODENAME'] for place in placements} == set(slurm_cluster.nodes)
    assert {place['MASTER_ADDR'] for place in placements} == {'localhost'}
    assert_losses_match(work_dir, 2, single_process_run)
    assert_weights_match(work_dir, single_process_run)
    checkpoint = work_dir / 'epoch_2.pth'

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
