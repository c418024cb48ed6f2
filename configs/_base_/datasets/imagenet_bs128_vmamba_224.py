# ImageNet-1k as the official VMamba recipe reads it (timm's create_transform, re-expressed with
# mmpretrain transforms): bicubic random-resized crop, flip, RandAugment rand-m9-mstd0.5-inc1, random
# erasing 0.25 (per-pixel noise), resize 256 -> center crop 224 for evaluation. See
# configs/classification/README.md for each value beside the official one.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'

data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

bgr_mean = data_preprocessor['mean'][::-1]
bgr_std = data_preprocessor['std'][::-1]

# Data checked at the door: an unreadable image or a label past the head's classes stops the run naming
# the file (vmamba_mm.datasets.CheckedLoadImageFromFile, CheckClassLabels). A config for other classes
# sets the check's num_classes too.
check_labels = dict(type='CheckClassLabels', num_classes=data_preprocessor['num_classes'])

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    check_labels,
    dict(type='PackInputs'),
]

test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    check_labels,
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    # Fresh workers each epoch: persistent ones carry random states no checkpoint holds, so a resumed run
    # would augment differently from an uninterrupted one.
    persistent_workers=False,
    pin_memory=True,
    # Every image is 224²: the batch is stacked in the workers and copied to the GPU in one piece (mmpretrain's
    # default collate hands the preprocessor a list, copied and normalised image by image).
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)

val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    collate_fn=dict(type='default_collate'),
    # test_mode: a sample the pipeline cannot produce is an error, never replaced by another image.
    dataset=dict(type=dataset_type, data_root=data_root, split='val', test_mode=True, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
