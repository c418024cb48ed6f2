# The official VMamba ImageNet schedule for a total batch of 1024 (8 GPUs x 128).
# Learning rates follow the official linear rule 5e-4 x batch / 512: base 1e-3, warm-up start
# 5e-7 x 2 and floor 5e-6 x 2. Warm-up start and floor are given as ratios of the base lr, so
# `--auto-scale-lr` (which rescales the base lr to the actual batch) scales all three together.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    # One parameter group per distinct setting, not one per parameter (vmamba_mm.engine.optim_wrapper).
    constructor='MergedGroupsOptimWrapperConstructor',
    # `fused`: torch's one-kernel AdamW (the same update); under AMP it skips a step with non-finite gradients on
    # the device, where a plain AdamW first waits for the host to read the loss scaler's check.
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999),
                   fused=True),
    # The official optimizer exempts exactly the 1-D parameters and the biases from weight decay.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=5e-7 / 5e-4, by_epoch=True, begin=0, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=5e-6 / 5e-4, by_epoch=True, begin=20, end=300,
         convert_to_iter_based=True),
]

# mmengine's epoch loop, plus exact mid-epoch resume (data position and RNG state are checkpointed).
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=1024, enable=False)

# EMA of the weights after every step (decay 0.9999); like the official runs, both the EMA and the
# raw weights are evaluated (the raw model's metrics are logged with an `_origin` suffix). The foreach EMA
# computes mmengine's update in a few multi-tensor launches instead of one per tensor.
custom_hooks = [
    dict(type='EMAHook', ema_type='ForeachExponentialMovingAverage', momentum=1e-4, update_buffers=True,
         evaluate_on_ema=True, evaluate_on_origin=True, priority='ABOVE_NORMAL'),
]
