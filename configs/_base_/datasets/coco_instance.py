# COCO 2017 instance segmentation as mmdet defines it (1333x800, flip; test at 1333x800), with the data
# checked at the door: every annotation is checked while the dataset is built (CheckedCocoDataset: a
# NaN, out-of-image or under-3-point polygon, an empty segmentation, a box without area or an unknown
# category stops the run naming the image and annotation ids), and images load through
# CheckedLoadImageFromFile (an unreadable file stops the run naming it). A training set may skip instead:
# train_dataloader.dataset.on_bad_annotation='skip', CheckedLoadImageFromFile(on_error='skip').
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

dataset_type = 'CheckedCocoDataset'
backend_args = None

train_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader
