# Offline demo: Mask R-CNN with a small VMamba trained from scratch on the generated shapes
# dataset (_base_/datasets/shapes_coco.py), in minutes on 2 CPU cores, evaluated with mmdet's
# CocoMetric (bbox and segm) on the held-out split.
# The detector is the COCO one with narrower layers; the schedule keeps the AdamW recipe's
# shape (warm-up, two lr steps) at a from-scratch learning rate.
_base_ = [
    '../_base_/models/mask-rcnn_vmamba-tiny_fpn.py',
    '../_base_/datasets/shapes_coco.py',
    '../_base_/schedules/mask-rcnn_adamw_1x.py',
    '../_base_/default_runtime_det.py',
]

width = 64  # FPN and head channels (256 for COCO)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        arch=dict(_delete_=True, dims=32, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1),
        drop_path_rate=0.0,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes={{_base_.num_classes}}),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(
            num_convs=2, in_channels=width, conv_out_channels=width,
            num_classes={{_base_.num_classes}})),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200)))

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
