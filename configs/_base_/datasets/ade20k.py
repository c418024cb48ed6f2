# ADE20K (ADEChallengeData2016 under data/ade/) as mmseg defines it: train on 512x512 crops
# of images rescaled around 2048x512 (ratio 0.5-2.0, flip, photometric distortion), test
# on the whole image resized to fit 2048x512; `tools/test.py --tta` runs the multi-scale
# (0.5-1.75) + flip test through `tta_pipeline` and the runtime's `tta_model`.
# Batch: 2 images per GPU x 8 GPUs.
# Data checked at the door: an unreadable image (CheckedLoadImageFromFile) or a label map with
# labels outside the 150 classes and the ignore index 255 (CheckSegLabels, right after
# LoadAnnotations) stops the run naming the file. A config for other classes sets the check's
# num_classes too.
_base_ = 'mmseg::_base_/datasets/ade20k.py'

crop_size = (512, 512)
scale = (2048, 512)
check_labels = dict(type='CheckSegLabels', num_classes=150)

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
    # Loaded after Resize: the metric compares predictions with the labels at the image's own size.
    dict(type='LoadAnnotations', reduce_zero_label=True),
    check_labels,
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [check_labels],
            [dict(type='PackSegInputs')],
        ]),
]

train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
# test_mode: a sample the pipeline cannot produce is an error, never replaced by another image.
val_dataloader = dict(batch_size=1, dataset=dict(test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
