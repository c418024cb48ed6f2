"""mmengine extensions used by vmamba_mm's entry points."""
from .optim_wrapper import CPUAutocastOptimWrapper
from .cpu_dist import CPUDistributedDataParallel, LauncherEnvironmentError, setup_cpu_distributed

__all__ = ['CPUAutocastOptimWrapper', 'CPUDistributedDataParallel', 'LauncherEnvironmentError', 'setup_cpu_distributed']
from .hooks import AtomicCheckpointHook, NonFiniteLossError, NonFiniteLossHook
from .loops import ResumableEpochBasedTrainLoop, ResumeError

__all__ += ['AtomicCheckpointHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'ResumableEpochBasedTrainLoop', 'ResumeError']
