"""tools/slurm_train.sh and tools/slurm_test.sh through a real SLURM cluster on localhost (two slurmd node
names on one host, CPU only, GRES=none): mmengine's slurm launcher, the gloo backend. Training spans both
nodes (GPUS > GPUS_PER_NODE) and ends with the weights of one process on the same global batch (see
launch_runs.py); testing and the failure case run 2 tasks on one node; a job step inside a larger allocation
finds its rank 0."""
import os
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
    assert {place['MASTER_ADDR'] for place in placements} == {placements[0]['SLURMD_NODENAME']} == {'localhost'}
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


@pytest.fixture
def allocation_of_both_nodes(slurm_cluster, job_env):
    """The id of a job holding both nodes with no step running (salloc --no-shell), cancelled afterwards."""
    env = slurm_cluster.env(job_env)
    granted = run(['salloc', f'--partition={slurm_cluster.partition}', '--nodes=2', '--no-shell'], env)
    job = re.search(r'Granted job allocation (\d+)', granted.stderr)
    assert job, describe(granted)
    yield job.group(1)
    run(['scancel', job.group(1)], env)


def test_a_step_inside_an_allocation_meets_at_its_own_first_node(slurm_cluster, slurm_env, allocation_of_both_nodes,
                                                                 tmp_path):
    """Rank 0 runs on the first node of its job step. A step on localhost2 of an allocation of both nodes must
    rendezvous there, not at the allocation's first node, where SLURM_NODELIST starts."""
    script = tmp_path / 'where.py'
    script.write_text("import os\nprint(*(os.environ[name] for name in ('SLURMD_NODENAME', 'SLURM_NODELIST', "
                      "'MASTER_ADDR')))\n")
    step_env = {**slurm_env, 'GPUS': '1', 'SRUN_ARGS': f'--jobid={allocation_of_both_nodes} --nodelist=localhost2'}
    step = run(['bash', 'tools/slurm_launch.sh', slurm_cluster.partition, 'vmamba-where', script], step_env)
    assert step.returncode == 0, describe(step)
    assert step.stdout.split() == ['localhost2', 'localhost,localhost2', 'localhost2']


def test_cpu_rendezvous_without_the_launch_script_uses_the_steps_first_node(slurm_cluster, monkeypatch):
    """The same rule where srun started the tool directly (no MASTER_ADDR from tools/slurm_launch.sh)."""
    from vmamba_mm.engine import cpu_dist

    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    step = dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_LOCALID='0', SLURM_NODELIST='localhost,localhost2',
                SLURM_STEP_NODELIST='localhost2', PATH=os.environ['PATH'])
    for name, value in slurm_cluster.env(step).items():
        monkeypatch.setenv(name, value)
    cpu_dist._rendezvous_from_slurm()
    assert os.environ['MASTER_ADDR'] == 'localhost2'
