"""Distributed training and testing through mmengine on machines without CUDA (CPU clusters, CI).

mmengine 0.10's distributed set-up assumes GPUs twice: `init_dist` calls `torch.cuda.set_device` for
the pytorch and slurm launchers, and `Runner.wrap_model` hands DDP `device_ids=[LOCAL_RANK]`, which DDP
rejects for a module on the CPU. `setup_cpu_distributed` prepares both before the Runner is built: it
creates the gloo process group itself (the Runner then skips `init_dist`) and makes the model wrapper
`CPUDistributedDataParallel`, which leaves `device_ids` out.
"""
import datetime
import os
import subprocess

import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


class LauncherEnvironmentError(RuntimeError):
    """`--launcher` names a launcher that did not start this process (its environment variables are missing)."""


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for a model on the CPU.

    The Runner passes `device_ids=[LOCAL_RANK]` to every DDP wrapper; DDP accepts device ids for GPU
    modules only, and on the CPU it needs none: gradients are averaged across processes all the same.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, **kwargs)


def setup_cpu_distributed(cfg, launcher):
    """Join the job's gloo process group and switch `cfg.model_wrapper_cfg` to `CPUDistributedDataParallel`.

    Rank, world size and rendezvous address come from torchrun (`launcher='pytorch'`) or from SLURM
    (`launcher='slurm'`: MASTER_ADDR and MASTER_PORT from the environment, as tools/slurm_launch.sh sets them,
    else the first host of the job step, where rank 0 runs, and 29500). `cfg.env_cfg.dist_cfg.timeout` (seconds) is honoured;
    its backend is not: gloo is the CPU backend.
    """
    if launcher == 'slurm':
        _rendezvous_from_slurm()
    elif launcher != 'pytorch':
        raise LauncherEnvironmentError(
            f"--launcher {launcher} is not supported without CUDA; use pytorch (torchrun, tools/dist_train.sh) "
            f'or slurm (srun, tools/slurm_train.sh)')
    missing = [name for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if name not in os.environ]
    if missing:
        raise LauncherEnvironmentError(
            f'--launcher {launcher}: {", ".join(missing)} not set; start the job with torchrun '
            f'(tools/dist_train.sh) rather than python')

    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
    dist.init_process_group('gloo', timeout=None if timeout is None else datetime.timedelta(seconds=timeout))

    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper['type'] = 'CPUDistributedDataParallel'
        # The Runner's own defaults for a config without model_wrapper_cfg.
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper


def _rendezvous_from_slurm():
    if 'SLURM_PROCID' not in os.environ:
        raise LauncherEnvironmentError(
            '--launcher slurm outside a SLURM job step (SLURM_PROCID is not set); start the job with srun '
            '(tools/slurm_train.sh)')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        # Not SLURM_NODELIST alone: inside a larger allocation it lists the allocation's nodes, and a step on
        # some of them need not start on the first.
        nodes = os.environ.get('SLURM_STEP_NODELIST') or os.environ['SLURM_NODELIST']
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', nodes], capture_output=True, text=True,
                               check=True).stdout.split()
        os.environ['MASTER_ADDR'] = hosts[0]
