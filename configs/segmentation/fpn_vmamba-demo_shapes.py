# Offline demo: Semantic FPN with a small VMamba trained from scratch on the generated shapes dataset in
# the ADE20K layout (`tools/dataset_converters/make_shapes_demo.py ade` -> data/shapes_ade), in minutes on
# 2 CPU cores, evaluated with mmseg's IoUMetric on the held-out split; `tools/test.py --tta` runs the
# multi-scale + flip test as for ADE20K. Labels are stored as ADE20K stores them (0 = unlabelled, ignored
# via reduce_zero_label). The model is the ADE20K one with narrower layers and plain BN (SyncBN needs a
# process group); the pipeline keeps the ADE20K recipe's shape at 1/4 of its resolution, the schedule
# that of the UperNet demo (a short warm-up: from scratch, lr 1e-3).
_base_ = './fpn_vmamba-tiny_8xb4-40k_ade20k-512x512.py'

data_root = 'data/shapes_ade'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[(120, 120, 120), (220, 20, 60), (0, 128, 255), (255, 200, 0)])
num_classes = len(metainfo['classes'])
crop_size = (128, 128)
scale = (512, 128)  # ADE20K's (2048, 512) at 1/4
width = 64  # FPN channels (256 for ADE20K)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, dims=32, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1),
        drop_path_rate=0.0,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    decode_head=dict(
        in_channels=[width] * 4, channels=64, num_classes=num_classes, norm_cfg=dict(type='BN', requires_grad=True)))

check_labels = dict(type='CheckSegLabels', num_classes=num_classes)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    check_labels,
    dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    check_labels,
    dict(type='PackSegInputs'),
]
shapes_dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(**shapes_dataset, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(**shapes_dataset, test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader

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
