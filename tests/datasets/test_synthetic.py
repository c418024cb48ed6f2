"""SyntheticImageNet: ImageNet-shaped samples from memory, reproducible by seed, through a real pipeline."""
import pytest
import torch
from mmengine.registry import DATASETS

import vmamba_mm  # noqa: F401  registers the dataset
from vmamba_mm.datasets import SyntheticImageNet


def test_samples_go_through_the_pipeline_like_decoded_images():
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    dataset = DATASETS.build(dict(type='SyntheticImageNet', num_samples=10, image_size=24, num_classes=7,
                                  distinct_images=3, pipeline=[dict(type='mmpretrain.PackInputs')]))
    assert len(dataset) == 10 and len(dataset.metainfo['classes']) == 7
    sample = dataset[4]
    assert sample['inputs'].shape == (3, 24, 24) and sample['inputs'].dtype == torch.uint8
    label = sample['data_samples'].gt_label.item()
    assert 0 <= label < 7 and label == dataset.labels[4]
    # the pool repeats every `distinct_images` samples
    torch.testing.assert_close(dataset[1]['inputs'], sample['inputs'])
    assert not torch.equal(dataset[0]['inputs'], sample['inputs'])


def test_same_seed_same_data_other_seed_other_data():
    first, again, other = (SyntheticImageNet(num_samples=50, image_size=8, seed=seed) for seed in (0, 0, 1))
    assert (first.images == again.images).all() and (first.labels == again.labels).all()
    assert (first.images != other.images).any() and (first.labels != other.labels).any()
    assert first[3]['img'].shape == (8, 8, 3)


@pytest.mark.parametrize('name,value', [('num_samples', 0), ('image_size', -3), ('num_classes', 2.5),
                                        ('distinct_images', None)])
def test_bad_sizes_are_named(name, value):
    with pytest.raises(ValueError, match=f'{name} must be a positive integer'):
        SyntheticImageNet(**{name: value})


def test_an_in_place_transform_never_changes_the_pool():
    dataset = SyntheticImageNet(num_samples=4, image_size=8, distinct_images=2)
    before = dataset.images.copy()
    dataset[0]['img'][:] = 0
    assert (dataset.images == before).all()


def test_coco_instances_go_through_a_detection_pipeline_with_boxes_and_masks():
    from mmdet.utils import register_all_modules

    from vmamba_mm.datasets import SyntheticCocoInstances
    register_all_modules(init_default_scope=False)
    pipeline = [dict(type='mmdet.Resize', scale=(200, 120), keep_ratio=True), dict(type='mmdet.PackDetInputs')]
    dataset = DATASETS.build(dict(type='SyntheticCocoInstances', num_samples=9, image_sizes=[(48, 64), (64, 48)],
                                  num_classes=5, objects_per_image=3, distinct_images=2, pipeline=pipeline))
    assert len(dataset) == 9 and dataset.get_data_info(1) == dict(img_id=1, height=64, width=48)
    sample = dataset[0]
    assert sample['inputs'].shape == (3, 120, 160)  # 48 x 64 resized to fit 200 x 120, the ratio kept
    instances = sample['data_samples'].gt_instances
    assert len(instances) == 3 and instances.masks.masks.shape == (3, 120, 160)
    assert ((instances.labels >= 0) & (instances.labels < 5)).all()
    boxes = instances.bboxes.tensor
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 120).all()

    # before the pipeline: every mask lies inside its box (pixel i covers [i, i + 1)) and fills an ellipse's share
    unpiped = SyntheticCocoInstances(num_samples=2, image_sizes=[(48, 64)], objects_per_image=4, distinct_images=1)
    raw = unpiped[1]
    for mask, (x0, y0, x1, y1) in zip(raw['gt_masks'].masks, raw['gt_bboxes'].tensor.tolist()):
        rows, cols = mask.nonzero()
        assert rows.min() >= y0 - 1 and rows.max() < y1 and cols.min() >= x0 - 1 and cols.max() < x1
        assert 0.6 < mask.sum() / ((x1 - x0) * (y1 - y0)) < 0.95
    # a transform that writes into a sample leaves the pool as it was
    raw['gt_masks'].masks[:] = 0
    raw['img'][:] = 0
    assert raw['gt_bboxes_labels'].shape == (4, ) and not raw['gt_ignore_flags'].any()
    assert unpiped.pool[0][2].any() and unpiped[0]['img'].any() and unpiped[0]['gt_masks'].masks.any()


def test_segmentation_maps_go_through_the_ade20k_pipeline():
    from mmseg.utils import register_all_modules

    from vmamba_mm.datasets import SyntheticSegmentation
    register_all_modules(init_default_scope=False)
    pipeline = [dict(type='mmseg.RandomCrop', crop_size=(32, 32), cat_max_ratio=0.75),
                dict(type='mmseg.PhotoMetricDistortion'), dict(type='mmseg.PackSegInputs')]
    dataset = SyntheticSegmentation(num_samples=5, image_size=(48, 80), num_classes=7, regions=4, distinct_images=2,
                                    pipeline=pipeline)
    sample = dataset[3]
    labels = sample['data_samples'].gt_sem_seg.data
    assert sample['inputs'].shape == (3, 32, 32) and labels.shape == (1, 32, 32)
    values = set(labels.unique().tolist())
    assert values <= set(range(7)) | {255}
    # regions: the full map holds few distinct labels, each in a large block
    full = dataset.label_maps[0]
    assert len(set(full.flatten().tolist())) <= 16 and (full[:12, :20] == full[0, 0]).all()
    assert dataset.label_maps.shape == (2, 48, 80) and dataset.images.shape == (2, 48, 80, 3)


@pytest.mark.parametrize('make,message', [
    (lambda: __import__('vmamba_mm.datasets', fromlist=['x']).SyntheticCocoInstances(image_sizes=[(0, 4)]),
     r'image_sizes must be \(height, width\) pairs'),
    (lambda: __import__('vmamba_mm.datasets', fromlist=['x']).SyntheticCocoInstances(objects_per_image=0),
     'objects_per_image must be a positive integer'),
    (lambda: __import__('vmamba_mm.datasets', fromlist=['x']).SyntheticSegmentation(image_size=512),
     r'image_size must be \(height, width\) pairs'),
    (lambda: __import__('vmamba_mm.datasets', fromlist=['x']).SyntheticSegmentation(num_classes=300),
     'num_classes must be at most 255'),
])
def test_bad_detection_and_segmentation_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
