"""tools/dist_train.sh and tools/dist_test.sh on CPU with the gloo backend: 2 torchrun processes on one
node, and 2 torchrun "nodes" (two torchrun agents on localhost, node ranks 0 and 1, one process each).

Both train as one process does with the same global batch (see launch_runs.py for why they must).
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from launch_paths import PROBE_CONFIG, REPO_ROOT
from launch_runs import (JOB_TIMEOUT, assert_losses_match, assert_weights_match, check, final_checkpoint,
                         rank_placements, run, train_options)
from local_slurm import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def runs(tmp_path_factory, job_env, probe_options, single_process_run):
    """Work dirs of the same training on 1 process and on 2 (torchrun, one node)."""
    work_dir = tmp_path_factory.mktemp('train_2proc')
    check(run(['bash', 'tools/dist_train.sh', PROBE_CONFIG, 2, '--work-dir', work_dir,
               *train_options(2, probe_options)], job_env))
    return {1: single_process_run, 2: work_dir}


@pytest.fixture(scope='module')
def final_checkpoints(runs):
    return {processes: final_checkpoint(work_dir) for processes, work_dir in runs.items()}


def test_two_processes_follow_the_single_process_loss_curve(runs):
    single = assert_losses_match(runs[2], 2, runs[1])
    assert len(single) == 16  # 256 images / 32 per step x 2 epochs
    assert single[-1] < single[0]  # it trains


def test_two_processes_end_with_the_single_process_weights(runs):
    assert_weights_match(runs[2], runs[1])


@pytest.fixture(scope='module')
def two_node_run(tmp_path_factory, job_env, probe_options):
    """The training of `runs` on 2 torchrun "nodes" of one process each: two tools/dist_train.sh commands
    with NNODES=2, the same MASTER_ADDR and PORT, and NODE_RANK 0 and 1, as one types them on two machines
    (here both on localhost, sharing the work dir as nodes share a file system)."""
    work_dir = tmp_path_factory.mktemp('train_2nodes')
    command = ['bash', 'tools/dist_train.sh', PROBE_CONFIG, 1, '--work-dir', work_dir, *train_options(2, probe_options)]
    node_env = {**job_env, 'NNODES': '2', 'MASTER_ADDR': '127.0.0.1', 'PORT': str(free_port())}
    logs = [work_dir / f'node{node_rank}.log' for node_rank in (0, 1)]
    nodes = []
    try:
        for node_rank, log in enumerate(logs):
            with open(log, 'w') as output:
                nodes.append(subprocess.Popen([str(part) for part in command], cwd=REPO_ROOT,
                                              env={**node_env, 'NODE_RANK': str(node_rank)}, stdout=output,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + JOB_TIMEOUT
        codes = [node.wait(timeout=max(deadline - time.monotonic(), 1)) for node in nodes]
    finally:
        for node in nodes:  # a hung or half-started job: end each node's torchrun and its workers
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
    assert codes == [0, 0], '\n'.join(f'--- node {rank}: exit {code}\n{log.read_text()[-4000:]}'
                                       for rank, (code, log) in enumerate(zip(codes, logs)))
    return work_dir


def test_two_nodes_train_as_one_process(two_node_run, single_process_run):
    placements = rank_placements(two_node_run, 2)
    # One process per node: global rank r is node r's only process (local rank 0), all in one world of 2.
    assert [(place['rank'], place['GROUP_RANK'], place['LOCAL_RANK'], place['world_size'])
            for place in placements] == [(0, '0', '0', 2), (1, '1', '0', 2)]
    assert_losses_match(two_node_run, 2, single_process_run)
    assert_weights_match(two_node_run, single_process_run)


def test_auto_scale_lr_counts_every_process(final_checkpoints):
    # base_batch_size 64 and a global batch of 32 halve the demo's 2e-3 on 1 process and on 2 alike.
    for checkpoint in final_checkpoints.values():
        initial_lrs = [group['initial_lr'] for group in checkpoint['optimizer']['param_groups']]
        assert initial_lrs == pytest.approx([1e-3] * len(initial_lrs))


def test_dist_test_reports_the_single_process_metrics(runs, job_env, probe_options):
    checkpoint = runs[2] / 'epoch_2.pth'
    single = check(run([sys.executable, 'tools/test.py', PROBE_CONFIG, checkpoint, '--work-dir',
                        runs[2] / 'test_1proc', *probe_options], job_env))
    ddp = check(run(['bash', 'tools/dist_test.sh', PROBE_CONFIG, checkpoint, 2, '--work-dir',
                     runs[2] / 'test_2proc', *probe_options], job_env))
    metrics = re.compile(r'^accuracy/top1\S*: [0-9.]+$', re.MULTILINE)
    assert metrics.findall(single.stdout), single.stdout[-2000:]
    assert metrics.findall(ddp.stdout) == metrics.findall(single.stdout)


def test_a_dead_rank_ends_the_job_and_is_named(tmp_path, job_env, probe_options):
    start = time.monotonic()
    result = run(['bash', 'tools/dist_train.sh', PROBE_CONFIG, 2, '--work-dir', tmp_path, *probe_options,
                  'train_dataloader.batch_size=16'], {**job_env, 'DIST_PROBE_EXIT_RANK': '1'})
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    # torchrun's summary names the first failure: "rank : 1 (local_rank: 1)", "exitcode : 3 (pid: ...)";
    # the survivor, which torchrun ended, is listed above it.
    assert 'Root Cause (first observed failure)' in result.stderr, result.stderr[-4000:]
    root_cause = result.stderr.split('Root Cause (first observed failure)')[1]
    assert re.search(r'rank\s*:\s*1 \(local_rank: 1\)', root_cause), root_cause
    assert re.search(r'exitcode\s*:\s*3 ', root_cause), root_cause
    # Start-up takes most of it on a crowded machine; the surviving rank must not wait for the process
    # group's 30-minute timeout.
    assert elapsed < 300


def test_two_jobs_share_a_machine(tmp_path, job_env):
    """Without PORT each single-node job picks its own free port, so concurrent jobs both rendezvous."""
    script = tmp_path / 'all_reduce.py'
    script.write_text(
        'import torch, torch.distributed as dist\n'
        "dist.init_process_group('gloo')\n"
        'total = torch.ones(1)\n'
        'dist.all_reduce(total)\n'
        "assert total.item() == dist.get_world_size() == 2, total\n"
        'dist.destroy_process_group()\n')
    jobs = [subprocess.Popen(['bash', 'tools/dist_launch.sh', '2', str(script)], cwd=REPO_ROOT, env=job_env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for job in jobs:
        output, _ = job.communicate(timeout=JOB_TIMEOUT)
        assert job.returncode == 0, output[-4000:]
