"""Data checked at the door: clear errors for a missing dataset, unreadable image files, bad COCO annotations,
labels outside the model's classes and data settings that cannot train or evaluate right; and an in-memory
ImageNet-shaped dataset for throughput runs."""
import importlib.util

from .checks import (DataConfigError, DatasetNotFoundError, check_batch_norm_batch_size, check_data_pipelines,
                     check_dataset_roots)
from .synthetic import SyntheticImageNet
from .transforms import (CheckClassLabels, CheckedLoadImageFromFile, CheckSegLabels, LabelOutOfRangeError,
                         UnreadableImageError)

__all__ = [
    'CheckClassLabels', 'CheckSegLabels', 'CheckedLoadImageFromFile', 'DataConfigError', 'DatasetNotFoundError',
    'LabelOutOfRangeError', 'SyntheticImageNet', 'UnreadableImageError', 'check_batch_norm_batch_size',
    'check_data_pipelines', 'check_dataset_roots'
]

# The checked COCO dataset extends mmdet's and registers in its DATASETS; without mmdet there is nothing to extend.
if importlib.util.find_spec('mmdet') is not None:
    from .coco import BadAnnotationError, CheckedCocoDataset  # noqa: F401

    __all__ += ['BadAnnotationError', 'CheckedCocoDataset']
