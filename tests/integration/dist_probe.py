"""Test-only mmengine hooks for the distributed launch tests, loaded through the test config's
`custom_imports` (this folder is on PYTHONPATH in those runs); nothing in the toolkit imports them."""
import json
import os
import os.path as osp

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

# Names the rank that ExitRankHook ends; unset in every run but the failure tests'.
EXIT_RANK_VARIABLE = 'DIST_PROBE_EXIT_RANK'
EXIT_CODE = 3


@HOOKS.register_module()
class RankLossRecorder(Hook):
    """Writes each rank's training losses, one per iteration, to `<work_dir>/losses_rank<rank>.json`.

    mmengine logs rank 0's loss only, which under DDP is the loss of rank 0's share of the batch; the
    mean over ranks is the loss of the whole batch."""

    priority = 'LOWEST'

    def before_train(self, runner):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs['loss'].item())

    def after_train(self, runner):
        with open(osp.join(runner.work_dir, f'losses_rank{runner.rank}.json'), 'w') as f:
            json.dump(self.losses, f)


@HOOKS.register_module()
class RankPlacementRecorder(Hook):
    """Writes where each rank ran to `<work_dir>/placement_rank<rank>.json`: its rank and world size as the
    Runner sees them, and the launcher's variables that name its node and its place on it (torchrun's
    GROUP_RANK, the node rank; SLURM's SLURM_NODEID and SLURMD_NODENAME; LOCAL_RANK and MASTER_ADDR as
    the process group was set up with them). A variable the launcher did not set is null."""

    VARIABLES = ('LOCAL_RANK', 'GROUP_RANK', 'SLURM_NODEID', 'SLURMD_NODENAME', 'MASTER_ADDR')

    def before_train(self, runner):
        placement = dict(rank=runner.rank, world_size=runner.world_size,
                         **{name: os.environ.get(name) for name in self.VARIABLES})
        with open(osp.join(runner.work_dir, f'placement_rank{runner.rank}.json'), 'w') as f:
            json.dump(placement, f)


@HOOKS.register_module()
class ExitRankHook(Hook):
    """Ends the process of the rank named by $DIST_PROBE_EXIT_RANK after its second training iteration,
    the way a crash does: exit status 3, no exception, no cleanup, its peers left waiting in DDP."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if os.environ.get(EXIT_RANK_VARIABLE) == str(runner.rank) and runner.iter + 1 >= 2:
            os._exit(EXIT_CODE)
