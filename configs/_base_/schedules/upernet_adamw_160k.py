# The AdamW 160k-iteration schedule of the Swin / VMamba UperNet baselines: lr 6e-5 for a
# total batch of 16, linear warm-up over 1500 iterations from 1e-6 x lr, then linear
# (poly, power 1) decay to 0; weight decay 0.01 except on the backbone norms the official configs
# exempt; validation and a checkpoint every 16k iterations (mmseg's 160k schedule; the checkpoint interval is
# in default_runtime_seg.py, which holds all of segmentation's hooks).
_base_ = ['./vmamba_norm_decay.py']

# mmseg's iteration loop, plus resume at the next batch with the random states of the interrupted run.
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=160000, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # One parameter group per distinct setting, not one per parameter (vmamba_mm.engine.optim_wrapper).
    constructor='MergedGroupsOptimWrapperConstructor',
    # `fused`: torch's one-kernel AdamW, the same update.
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01, fused=True),
    paramwise_cfg=dict(custom_keys={{_base_.official_norm_decay}}))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
