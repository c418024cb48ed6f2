# Offline demo: RetinaNet with a small VMamba trained from scratch on the generated shapes dataset
# (`tools/dataset_converters/make_shapes_demo.py coco` -> data/shapes_coco), in minutes on 2 CPU
# cores, evaluated with mmdet's CocoMetric (bbox) on the held-out split. The detector is the COCO
# one with narrower layers and two convolutions per head branch instead of four (its anchors, from
# 32 px on P3, already fit the 20-64 px shapes); the schedule keeps the AdamW recipe's shape (warm-up,
# one lr step) at a from-scratch learning rate.
_base_ = './retinanet_vmamba-tiny_fpn_1x_coco.py'

data_root = 'data/shapes_coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle'),
    palette=[(220, 20, 60), (0, 128, 255), (255, 200, 0)])
image_size = (128, 128)
width = 64  # FPN and head channels (256 for COCO)

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, dims=32, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1),
        drop_path_rate=0.0,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256], out_channels=width),
    bbox_head=dict(
        num_classes=len(metainfo['classes']), in_channels=width, feat_channels=width, stacked_convs=2))

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
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
