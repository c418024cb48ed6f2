"""tools/dist_train.sh and tools/dist_test.sh on CPU: 2 torchrun processes with the gloo backend.

Data-parallel training with a global batch of 32 split over 2 processes must follow the same path as one
process with the 32 images: mmengine's DefaultSampler hands rank r the positions r, r + 2, ... of one
seeded permutation, so each step the two ranks together see exactly the images one process sees, and
DDP's gradient mean over ranks equals the single process's mean over the batch (the model has no
BatchNorm: VMamba normalises with LayerNorm).
"""
import json
import re
import subprocess
import sys
import time

import pytest
import torch

from launch_paths import PROBE_CONFIG, REPO_ROOT

pytestmark = pytest.mark.slow

GLOBAL_BATCH = 32
JOB_TIMEOUT = 600  # seconds; a hung job fails the test instead of the CI run


def run(command, env):
    return subprocess.run([str(part) for part in command], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=JOB_TIMEOUT)


def check(result):
    assert result.returncode == 0, f'exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}'
    return result


def train(work_dir, processes, env, options):
    options = [*options, f'train_dataloader.batch_size={GLOBAL_BATCH // processes}']
    common = ['--work-dir', work_dir, '--auto-scale-lr', *options]
    if processes == 1:
        return check(run([sys.executable, 'tools/train.py', PROBE_CONFIG, *common], env))
    return check(run(['bash', 'tools/dist_train.sh', PROBE_CONFIG, processes, *common], env))


def rank_losses(work_dir, processes):
    """(processes, steps) training losses, each of its rank's share of the batch."""
    per_rank = [json.loads((work_dir / f'losses_rank{rank}.json').read_text()) for rank in range(processes)]
    assert len({len(losses) for losses in per_rank}) == 1, 'ranks ran different numbers of steps'
    return torch.tensor(per_rank, dtype=torch.float64)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, job_env, probe_options):
    """Work dirs of the same training on 1 process and on 2 (torchrun)."""
    work_dirs = {}
    for processes in (1, 2):
        work_dirs[processes] = tmp_path_factory.mktemp(f'train_{processes}proc')
        train(work_dirs[processes], processes, job_env, probe_options)
    return work_dirs


@pytest.fixture(scope='module')
def final_checkpoints(runs):
    return {processes: torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)
            for processes, work_dir in runs.items()}


def test_two_processes_follow_the_single_process_loss_curve(runs):
    (single,), ddp = rank_losses(runs[1], 1), rank_losses(runs[2], 2)
    assert len(single) == 16  # 256 images / 32 per step x 2 epochs
    assert not torch.allclose(ddp[0], ddp[1])  # the ranks see different halves of each batch
    # Equal halves: the loss of the whole batch is the mean of the ranks' losses.
    torch.testing.assert_close(ddp.mean(0), single, rtol=0, atol=1e-5)
    assert single[-1] < single[0]  # it trains


def test_two_processes_end_with_the_single_process_weights(final_checkpoints):
    single, ddp = final_checkpoints[1], final_checkpoints[2]
    # state_dict holds the EMA weights (mmengine's EMAHook swaps them in), ema_state_dict the raw ones.
    for key in ('state_dict', 'ema_state_dict'):
        assert single[key].keys() == ddp[key].keys()
        for name, weight in single[key].items():
            torch.testing.assert_close(ddp[key][name], weight, rtol=0, atol=1e-5,
                                       msg=lambda message: f'{key}.{name}: {message}')


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
