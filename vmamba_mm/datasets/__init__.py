"""Data-side safety nets: clear errors for a missing dataset and for image files that cannot be read."""
from .checks import DatasetNotFoundError, check_dataset_roots
from .transforms import CheckedLoadImageFromFile, UnreadableImageError

__all__ = ['CheckedLoadImageFromFile', 'DatasetNotFoundError', 'UnreadableImageError', 'check_dataset_roots']
