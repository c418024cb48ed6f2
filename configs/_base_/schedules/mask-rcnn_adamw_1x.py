# The AdamW 1x schedule of the Swin / VMamba Mask R-CNN baselines: 12 epochs for a total
# batch of 16 (8 GPUs x 2 images), 1000-iteration linear warm-up from 0.001 x lr, lr / 10
# after epochs 8 and 11, weight decay 0.05 except on the backbone norms the official configs exempt.
max_epochs = 12
# mmengine's epoch loop, plus mid-epoch resume at the next batch (a COCO epoch is about 7,300 iterations).
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1),
]

# Weight decay of the backbone's LayerNorms, as in the official configs. Their custom key 'norm' exempts every
# parameter whose name holds 'norm': in VMamba the blocks' norm and norm2, SS2D's out_norm and the output norms
# outnorm{i}. The official stem and downsampling LayerNorms are unnamed nn.Sequential entries (patch_embed.2 and .7,
# downsample.3), so they are decayed; here they are named patch_embed.norm* and downsample.norm, and the two longer
# keys (mmengine applies the longest matching key) keep them decayed.
official_norm_decay = {
    'norm': dict(decay_mult=0.),
    'patch_embed.norm': dict(decay_mult=1.),
    'downsample.norm': dict(decay_mult=1.),
}
# Opt-in alternative: no decay on any backbone LayerNorm, the stem and downsampling ones included. This is the rule
# the ImageNet recipe pretrained the checkpoints with (no decay on 1-D parameters); it is not the official downstream
# recipe. In a config based on this schedule:
#   optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.all_norms_no_decay}}))
all_norms_no_decay = {
    'norm': dict(decay_mult=0.),
    'patch_embed.norm': dict(decay_mult=0.),
    'downsample.norm': dict(decay_mult=0.),
}

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys=official_norm_decay))

# `tools/train.py --auto-scale-lr` rescales lr for other total batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=16)
