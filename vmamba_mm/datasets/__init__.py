"""Data-side safety nets (clear errors for a missing dataset and for image files that cannot be read) and
an in-memory ImageNet-shaped dataset for throughput runs."""
from .checks import DatasetNotFoundError, check_dataset_roots
from .synthetic import SyntheticImageNet
from .transforms import CheckedLoadImageFromFile, UnreadableImageError

__all__ = [
    'CheckedLoadImageFromFile', 'DatasetNotFoundError', 'SyntheticImageNet', 'UnreadableImageError',
    'check_dataset_roots'
]
