# COCO 2017 object detection (boxes only) as mmdet defines it (1333x800, flip; test at 1333x800), for
# detectors without a mask head (RetinaNet), with the data checked at the door as in coco_instance.py:
# CheckedCocoDataset checks every annotation while the dataset is built (no segmentation is required,
# since no pipeline loads masks), CheckedLoadImageFromFile names an unreadable image.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

dataset_type = 'CheckedCocoDataset'
backend_args = None

train_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(type=dataset_type, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader
