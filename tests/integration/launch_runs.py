"""What the distributed training tests share: running a launch script, the options of a training with a
given global batch, and reading back what each rank recorded (tests/integration/dist_probe.py).

Data-parallel training with a global batch of 32 split over N processes follows the same path as one
process with the 32 images: mmengine's DefaultSampler hands rank r the positions r, r + N, ... of one
seeded permutation, so each step the ranks together see exactly the images one process sees, and DDP's
gradient mean over ranks equals the single process's mean over the batch (the model has no BatchNorm:
VMamba normalises with LayerNorm). The same holds whichever launcher started the ranks and however they
are spread over nodes.
"""
import json
import subprocess

import torch

from launch_paths import REPO_ROOT

GLOBAL_BATCH = 32
JOB_TIMEOUT = 600  # seconds; a hung job fails the test instead of the CI run
# Final weights of N processes match one process to this absolute tolerance, not bit for bit: each rank
# averages its own half of the batch and gloo sums the halves, where one process sums all 32 terms in
# another order. The float32 rounding differs in the last bits and 16 AdamW steps carry it on.
WEIGHT_ATOL = 1e-5


def run(command, env):
    return subprocess.run([str(part) for part in command], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=JOB_TIMEOUT)


def describe(result):
    return f'exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}'


def check(result):
    assert result.returncode == 0, describe(result)
    return result


def train_options(processes, options):
    """tools/train.py options for `processes` ranks that together train on the global batch; `options` ends
    with `--cfg-options` and its overrides."""
    return ['--auto-scale-lr', *options, f'train_dataloader.batch_size={GLOBAL_BATCH // processes}']


def rank_losses(work_dir, processes):
    """(processes, steps) training losses, each of its rank's share of the batch."""
    per_rank = [json.loads((work_dir / f'losses_rank{rank}.json').read_text()) for rank in range(processes)]
    assert len({len(losses) for losses in per_rank}) == 1, 'ranks ran different numbers of steps'
    return torch.tensor(per_rank, dtype=torch.float64)


def rank_placements(work_dir, processes):
    """What each rank recorded of where it ran (dist_probe.RankPlacementRecorder), by rank."""
    return [json.loads((work_dir / f'placement_rank{rank}.json').read_text()) for rank in range(processes)]


def final_checkpoint(work_dir):
    return torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)


def assert_losses_match(work_dir, processes, reference_dir):
    """The run in `work_dir` on `processes` ranks followed the loss curve of the single-process run in
    `reference_dir`; returns that curve."""
    (single,), ranks = rank_losses(reference_dir, 1), rank_losses(work_dir, processes)
    assert not torch.allclose(ranks[0], ranks[1])  # the ranks see different parts of each batch
    # Equal shares: the loss of the whole batch is the mean of the ranks' losses.
    torch.testing.assert_close(ranks.mean(0), single, rtol=0, atol=1e-5)
    return single


def assert_weights_match(work_dir, reference_dir):
    """The run in `work_dir` ended with the weights of the run in `reference_dir`, within WEIGHT_ATOL."""
    reference, checkpoint = final_checkpoint(reference_dir), final_checkpoint(work_dir)
    # state_dict holds the EMA weights (mmengine's EMAHook swaps them in), ema_state_dict the raw ones.
    for key in ('state_dict', 'ema_state_dict'):
        assert checkpoint[key].keys() == reference[key].keys()
        for name, weight in reference[key].items():
            torch.testing.assert_close(checkpoint[key][name], weight, rtol=0, atol=WEIGHT_ATOL,
                                       msg=lambda message: f'{key}.{name}: {message}')
