"""Data checked at the door: clear errors for a missing dataset, unreadable image files, bad COCO annotations,
labels outside the model's classes and data settings that cannot train or evaluate right; and in-memory datasets
shaped like ImageNet, COCO instances and ADE20K for throughput runs."""
import importlib.util

from .checks import (BadAnnotationError, DataConfigError, DatasetNotFoundError, check_batch_norm_batch_size,
                     check_data_pipelines, check_dataset_roots)
from .synthetic import SyntheticCocoInstances, SyntheticImageNet, SyntheticSegmentation
from .transforms import (CheckClassLabels, CheckedLoadImageFromFile, CheckSegLabels, LabelOutOfRangeError,
                         UnreadableImageError)

__all__ = [
    'BadAnnotationError', 'CheckClassLabels', 'CheckSegLabels', 'CheckedLoadImageFromFile', 'DataConfigError',
    'DatasetNotFoundError', 'LabelOutOfRangeError', 'SyntheticCocoInstances', 'SyntheticImageNet', 'SyntheticSegmentation',
    'UnreadableImageError', 'check_batch_norm_batch_size', 'check_data_pipelines', 'check_dataset_roots'
]

# The checked COCO dataset extends mmdet's and registers in its DATASETS; without mmdet there is nothing to extend.
if importlib.util.find_spec('mmdet') is not None:
    from .coco import CheckedCocoDataset  # noqa: F401

    __all__ += ['CheckedCocoDataset']
