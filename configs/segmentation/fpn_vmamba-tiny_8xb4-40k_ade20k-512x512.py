# Semantic FPN on VMamba-T for ADE20K, with the recipe of mmseg's PoolFormer Semantic FPNs: 40k iterations
# of 4 images x 8 GPUs, AdamW lr 2e-4, weight decay 1e-4, poly decay (power 0.9) to 0 without warm-up;
# validation and a checkpoint every 4k iterations. The backbone norms are exempt from weight decay as in the
# official VMamba downstream recipe. The data pipeline is the ADE20K one of the UperNet configs (512x512 crops,
# `--tta` multi-scale + flip). The VMamba paper reports no Semantic FPN: this config has no published result.
_base_ = [
    '../_base_/models/fpn_vmamba-tiny.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/vmamba_norm_decay.py',
    '../_base_/default_runtime_seg.py',
]

crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=4)

max_iters = 40000
interval = 4000
# mmseg's iteration loop, plus resume at the next batch with the random states of the interrupted run.
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={{_base_.official_norm_decay}}))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=interval))
# `tools/train.py --auto-scale-lr` rescales lr for other total batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=32)
