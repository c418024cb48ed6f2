# Offline demo: UperNet with a small VMamba trained from scratch on the generated shapes
# dataset in the ADE20K layout (_base_/datasets/shapes_ade.py), in minutes on 2 CPU cores,
# evaluated with mmseg's IoUMetric on the held-out split; `tools/test.py --tta` runs the
# multi-scale + flip test as for ADE20K. The model is the ADE20K one with narrower heads and
# plain BN (SyncBN needs a process group); the schedule keeps the ADE20K recipe's shape.
_base_ = [
    '../_base_/models/upernet_vmamba-tiny.py',
    '../_base_/datasets/shapes_ade.py',
    '../_base_/schedules/upernet_adamw_160k.py',
    '../_base_/default_runtime_seg.py',
]

norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(
        arch=dict(_delete_=True, dims=32, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1),
        drop_path_rate=0.0,
        init_cfg=None),
    decode_head=dict(
        in_channels=[32, 64, 128, 256], channels=64, num_classes={{_base_.num_classes}},
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=128, channels=32, num_classes={{_base_.num_classes}}, norm_cfg=norm_cfg))

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
