"""mmengine extensions used by vmamba_mm's entry points."""
from .cpu_dist import CPUDistributedDataParallel, LauncherEnvironmentError, setup_cpu_distributed
from .ema import ForeachExponentialMovingAverage
from .hooks import AtomicCheckpointHook, CheckpointSaveError, NonFiniteLossError, NonFiniteLossHook
from .loops import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop, ResumeError
from .optim_wrapper import CPUAutocastOptimWrapper, MergedGroupsOptimWrapperConstructor, merge_param_groups
from .runner import StrictRunner, compile_options_of

__all__ = [
    'AtomicCheckpointHook', 'CheckpointSaveError', 'CPUAutocastOptimWrapper', 'CPUDistributedDataParallel',
    'ForeachExponentialMovingAverage', 'LauncherEnvironmentError', 'MergedGroupsOptimWrapperConstructor',
    'NonFiniteLossError', 'NonFiniteLossHook', 'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop',
    'ResumeError', 'StrictRunner', 'compile_options_of', 'merge_param_groups', 'setup_cpu_distributed'
]
