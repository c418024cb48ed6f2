# Offline demo: Semantic FPN with a small VMamba trained from scratch on the generated shapes dataset in
# the ADE20K layout (_base_/datasets/shapes_ade.py), in minutes on 2 CPU cores, evaluated with mmseg's
# IoUMetric on the held-out split; `tools/test.py --tta` runs the multi-scale + flip test as for ADE20K.
# The model is the ADE20K one with narrower layers and plain BN (SyncBN needs a process group); the
# optimizer is the ADE20K config's, the schedule that of the UperNet demo (a short warm-up: from scratch,
# lr 1e-3).
_base_ = [
    '../_base_/models/fpn_vmamba-tiny.py',
    '../_base_/datasets/shapes_ade.py',
    '../_base_/schedules/fpn_adamw_40k.py',
    '../_base_/default_runtime_seg.py',
]

width = 64  # FPN channels (256 for ADE20K)

model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(
        arch=dict(_delete_=True, dims=32, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1),
        drop_path_rate=0.0,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    decode_head=dict(
        in_channels=[width] * 4, channels=64, num_classes={{_base_.num_classes}}, norm_cfg=dict(type='BN', requires_grad=True)))

max_iters = 500
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters, by_epoch=False),
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
