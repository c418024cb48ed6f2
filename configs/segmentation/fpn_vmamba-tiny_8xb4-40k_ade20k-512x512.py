# Semantic FPN on VMamba-T for ADE20K, with the recipe of mmseg's PoolFormer Semantic FPNs: 40k iterations
# of 4 images x 8 GPUs, AdamW lr 2e-4, weight decay 1e-4, poly decay (power 0.9) to 0 without warm-up;
# validation and a checkpoint every 4k iterations. The backbone norms are exempt from weight decay as in the
# official VMamba downstream recipe. The data pipeline is the ADE20K one of the UperNet configs (512x512 crops,
# `--tta` multi-scale + flip). The VMamba paper reports no Semantic FPN: this config has no published result.
_base_ = [
    '../_base_/models/fpn_vmamba-tiny.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/fpn_adamw_40k.py',
    '../_base_/default_runtime_seg.py',
]

crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=4)

default_hooks = dict(checkpoint=dict(interval=4000))
