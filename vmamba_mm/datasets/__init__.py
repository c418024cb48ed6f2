"""Data-side safety nets (clear errors for a missing dataset and for image files that cannot be read) and
in-memory datasets shaped like ImageNet, COCO instances and ADE20K for throughput runs."""
from .checks import DatasetNotFoundError, check_dataset_roots
from .synthetic import SyntheticCocoInstances, SyntheticImageNet, SyntheticSegmentation
from .transforms import CheckedLoadImageFromFile, UnreadableImageError

__all__ = [
    'CheckedLoadImageFromFile', 'DatasetNotFoundError', 'SyntheticCocoInstances', 'SyntheticImageNet',
    'SyntheticSegmentation', 'UnreadableImageError', 'check_dataset_roots'
]
