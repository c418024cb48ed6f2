# COCO instance segmentation with the multi-scale + random-crop training augmentation of
# DETR / Swin's 3x schedule: either resize the short side to one of 480..800 (step 32), or
# resize to 400/500/600, crop a 384..600 patch and then resize as in the first branch.
# Testing is unchanged: 1333x800.
_base_ = './coco_instance.py'

multi_scale = [(short_side, 1333) for short_side in range(480, 801, 32)]

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=multi_scale, keep_ratio=True)],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(400, 1333), (500, 1333), (600, 1333)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=multi_scale, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
