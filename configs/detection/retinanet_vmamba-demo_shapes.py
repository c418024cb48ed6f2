# Offline demo: RetinaNet with a small VMamba trained from scratch on the generated shapes dataset
# (_base_/datasets/shapes_coco.py), in minutes on 2 CPU cores, evaluated with mmdet's CocoMetric (bbox)
# on the held-out split. The detector is the COCO one (retinanet_vmamba-tiny_fpn_1x_coco.py, the same
# bases) with narrower layers and two convolutions per head branch instead of four (its anchors, from
# 32 px on P3, already fit the 20-64 px shapes); the schedule keeps the AdamW recipe's shape (warm-up,
# one lr step) at a from-scratch learning rate.
_base_ = [
    '../_base_/models/retinanet_vmamba-tiny_fpn.py',
    '../_base_/datasets/shapes_coco.py',
    '../_base_/schedules/mask-rcnn_adamw_1x.py',
    '../_base_/default_runtime_det.py',
]

width = 64  # FPN and head channels (256 for COCO)

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, dims=32, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1),
        drop_path_rate=0.0,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256], out_channels=width),
    bbox_head=dict(
        num_classes={{_base_.num_classes}}, in_channels=width, feat_channels=width, stacked_convs=2))

val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
