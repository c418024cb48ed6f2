# The AdamW 160k-iteration schedule of the Swin / VMamba UperNet baselines: lr 6e-5 for a
# total batch of 16, linear warm-up over 1500 iterations from 1e-6 x lr, then linear
# (poly, power 1) decay to 0; weight decay 0.01 except on the backbone norms the official configs
# exempt; validation and a checkpoint every 16k iterations (mmseg's 160k schedule; the checkpoint interval is
# in default_runtime_seg.py, which holds all of segmentation's hooks).
# mmseg's iteration loop, plus resume at the next batch with the random states of the interrupted run.
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=160000, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Weight decay of the backbone's LayerNorms, as in the official configs. Their custom key 'norm' exempts every
# parameter whose name holds 'norm': in VMamba the blocks' norm and norm2, SS2D's out_norm and the output norms
# outnorm{i}; the heads' SyncBN layers are named 'bn' and decayed. The official stem and downsampling LayerNorms are
# unnamed nn.Sequential entries (patch_embed.2 and .7, downsample.3), so they are decayed; here they are named
# patch_embed.norm* and downsample.norm, and the two longer keys (mmengine applies the longest matching key) keep
# them decayed.
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
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=official_norm_decay))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
