# The AdamW 1x schedule of the Swin / VMamba Mask R-CNN baselines: 12 epochs for a total
# batch of 16 (8 GPUs x 2 images), 1000-iteration linear warm-up from 0.001 x lr, lr / 10
# after epochs 8 and 11, weight decay 0.05 except on the backbone norms the official configs exempt.
_base_ = ['./vmamba_norm_decay.py']

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

optim_wrapper = dict(
    type='OptimWrapper',
    # One parameter group per distinct setting, not one per parameter (vmamba_mm.engine.optim_wrapper).
    constructor='MergedGroupsOptimWrapperConstructor',
    # `fused`: torch's one-kernel AdamW, the same update.
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, fused=True),
    paramwise_cfg=dict(custom_keys={{_base_.official_norm_decay}}))

# `tools/train.py --auto-scale-lr` rescales lr for other total batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=16)
