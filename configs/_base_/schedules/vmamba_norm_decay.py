# Weight decay of VMamba's LayerNorms in the downstream (detection, segmentation) recipes, as in the official
# configs. Their custom key 'norm' exempts every parameter whose name holds 'norm': in VMamba the blocks' norm1 and
# norm2, SS2D's out_norm and the output norms outnorm{i} (a head's BN/SyncBN layers are named 'bn' and decayed).
# The official stem and downsampling LayerNorms are unnamed nn.Sequential entries (patch_embed.2 and .7,
# downsample.3), so they are decayed; here they are named patch_embed.norm* and downsample.norm, and the two longer
# keys (mmengine applies the longest matching key) keep them decayed.
official_norm_decay = {
    'norm': dict(decay_mult=0.),
    'patch_embed.norm': dict(decay_mult=1.),
    'downsample.norm': dict(decay_mult=1.),
}
# The same rule on the vanilla design: there the official downsampling is Swin's patch merging, whose LayerNorm is
# named (layers.i.downsample.norm) and so exempt, while the stem's is still the unnamed patch_embed.2 and decayed.
# The vanilla detection and segmentation configs take these keys instead.
official_vanilla_norm_decay = {
    'norm': dict(decay_mult=0.),
    'patch_embed.norm': dict(decay_mult=1.),
    'downsample.norm': dict(decay_mult=0.),
}
# Opt-in alternative: no decay on any backbone LayerNorm, the stem and downsampling ones included. This is the rule
# the ImageNet recipe pretrained the checkpoints with (no decay on 1-D parameters); it is not the official downstream
# recipe. In a config based on a downstream schedule:
#   optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.all_norms_no_decay}}))
all_norms_no_decay = {
    'norm': dict(decay_mult=0.),
    'patch_embed.norm': dict(decay_mult=0.),
    'downsample.norm': dict(decay_mult=0.),
}
