"""vmamba_mm.engine.cpu_dist in one process: a real world-size-1 gloo group and a real DDP wrapper.
Multi-process runs through torchrun and SLURM are in tests/integration."""
import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import MODEL_WRAPPERS

from vmamba_mm.engine import CPUDistributedDataParallel, LauncherEnvironmentError, setup_cpu_distributed

LAUNCHER_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID',
                      'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_NODELIST')


class TinyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=self.linear(inputs).square().mean())


@pytest.fixture
def clean_env(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def torchrun_env(clean_env):
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    for name, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=str(port)).items():
        clean_env.setenv(name, value)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_joins_gloo_and_wraps_without_device_ids(torchrun_env):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)), find_unused_parameters=True))
    setup_cpu_distributed(cfg, 'pytorch')
    assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
    assert cfg.model_wrapper_cfg == dict(type='CPUDistributedDataParallel', broadcast_buffers=False,
                                         find_unused_parameters=True)

    # What Runner.wrap_model does with it: device_ids=[LOCAL_RANK] is passed to every DDP subclass.
    model = MODEL_WRAPPERS.build(cfg.model_wrapper_cfg, default_args=dict(module=TinyModel(), device_ids=[0]))
    assert isinstance(model, CPUDistributedDataParallel) and model.device_ids is None
    model(torch.ones(2, 3))['loss'].backward()
    assert model.module.linear.weight.grad is not None


def test_keeps_a_wrapper_the_config_chose(torchrun_env):
    cfg = Config(dict(model_wrapper_cfg=dict(type='MMFullyShardedDataParallel')))
    setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg == dict(type='MMFullyShardedDataParallel')


def test_slurm_launcher_outside_srun_is_refused(clean_env):
    with pytest.raises(LauncherEnvironmentError, match='outside a SLURM job step'):
        setup_cpu_distributed(Config(), 'slurm')
    assert not dist.is_initialized()


def test_pytorch_launcher_without_torchrun_is_refused(clean_env):
    with pytest.raises(LauncherEnvironmentError, match='RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not set'):
        setup_cpu_distributed(Config(), 'pytorch')


def test_mpi_launcher_is_refused_without_cuda(clean_env):
    with pytest.raises(LauncherEnvironmentError, match='--launcher mpi is not supported without CUDA'):
        setup_cpu_distributed(Config(), 'mpi')
