# Runtime settings shared by classification, detection and segmentation.
# vmamba_mm registers VMamba, its engine parts and StrictRunner (mmengine's Runner whose checkpoint loads are
# strict and never execute a checkpoint's contents) when a tool imports the config, upstream tools included.
custom_imports = dict(imports=['vmamba_mm'], allow_failed_imports=False)
runner_type = 'StrictRunner'
# Only hooks registered in mmengine's root registry appear here (mmengine's own and vmamba_mm.engine's),
# so every task (mmpretrain / mmdet / mmseg scope) can inherit this file; each task's runtime file adds
# its default_scope and visualizer.
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Written to a temporary file and renamed, old ones removed only after: a kill during a save never
    # leaves a truncated checkpoint for --resume. `save_last` keeps the final state resumable.
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # A NaN/inf loss stops training with the iteration and the last finite loss (on_non_finite='skip'
    # skips such steps instead).
    non_finite_loss=dict(type='NonFiniteLossHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

log_processor = dict(window_size=10, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
