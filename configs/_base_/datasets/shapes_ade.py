# The generated shapes demo in the ADE20K layout (`tools/dataset_converters/make_shapes_demo.py ade` ->
# data/shapes_ade): background and three shapes, labels stored as ADE20K stores them (0 = unlabelled, ignored
# via reduce_zero_label), evaluated with mmseg's IoUMetric on the held-out split. The pipeline is ADE20K's
# (ade20k.py, with its checks and `--tta`) at 1/4 of its resolution. Small enough to train in minutes on 2 CPU
# cores: no data workers.
_base_ = './ade20k.py'

data_root = 'data/shapes_ade'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[(120, 120, 120), (220, 20, 60), (0, 128, 255), (255, 200, 0)])
num_classes = len(metainfo['classes'])
crop_size = (128, 128)
scale = (512, 128)  # ADE20K's (2048, 512) at 1/4

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
