# The Semantic FPN schedule of mmseg's PoolFormer configs: 40k iterations, AdamW lr 2e-4 for a total batch of 32,
# weight decay 1e-4 except on the backbone norms the official VMamba downstream configs exempt, poly decay
# (power 0.9) to 0 without warm-up; validation every 4k iterations (the checkpoint interval is in the config, as
# default_runtime_seg.py holds all of segmentation's hooks).
_base_ = ['./vmamba_norm_decay.py']

# mmseg's iteration loop, plus resume at the next batch with the random states of the interrupted run.
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # One parameter group per distinct setting, not one per parameter (vmamba_mm.engine.optim_wrapper).
    constructor='MergedGroupsOptimWrapperConstructor',
    # `fused`: torch's one-kernel AdamW, the same update.
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4, fused=True),
    paramwise_cfg=dict(custom_keys={{_base_.official_norm_decay}}))

param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000, by_epoch=False)]
# `tools/train.py --auto-scale-lr` rescales lr for other total batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=32)
