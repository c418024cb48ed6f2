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
