"""Data checked at the door: image loading that names the file it cannot read (and can skip such files in
training), and label checks that name the sample whose labels the model cannot predict."""
import logging
import numbers

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS


class UnreadableImageError(OSError):
    """An image file of the dataset is missing, empty, corrupt or not an image."""


class LabelOutOfRangeError(ValueError):
    """A sample's class label, or a pixel of its segmentation map, lies outside the classes the model predicts."""


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's `LoadImageFromFile` (same arguments) with a clear answer to files it cannot read.

    Registered in mmengine's TRANSFORMS, so mmpretrain, mmdet and mmseg pipelines find it by name.

    Args:
        on_error (str): What a missing, empty (0 bytes or 0 pixels), corrupt or non-image file does.
            ``'raise'`` (default): :class:`UnreadableImageError` naming the file and the reason.
            ``'skip'``: a warning names the file and the dataset serves another sample in its place
            (mmengine's datasets draw a random other index, up to ``max_refetch`` times). Skipping is for
            training sets only, since a metric over other images than the set's would mislead:
            datasets in test mode refuse a skipped sample, and
            :func:`~vmamba_mm.datasets.check_data_pipelines` refuses ``'skip'`` in a val/test pipeline.
        **kwargs: `LoadImageFromFile` arguments, except ``ignore_empty`` (``on_error='skip'`` replaces it).
    """

    ACTIONS = ('raise', 'skip')

    def __init__(self, on_error='raise', **kwargs):
        if on_error not in self.ACTIONS:
            raise ValueError(f'CheckedLoadImageFromFile: on_error must be one of {self.ACTIONS}, got {on_error!r}')
        if 'ignore_empty' in kwargs:
            raise ValueError("CheckedLoadImageFromFile: use on_error='skip' instead of ignore_empty")
        super().__init__(**kwargs)
        self.on_error = on_error
        self.skipped = set()

    def transform(self, results):
        filename = results['img_path']
        try:
            loaded = super().transform(results)
        except AssertionError:  # the decoder returned nothing (mmcv asserts on it)
            return self._unreadable(filename, 'the decoder cannot read it (corrupt, or not an image)')
        except Exception as error:  # whatever the file backend or the decoder raise for this file
            return self._unreadable(filename, f'{type(error).__name__}: {error}'.rstrip(': '))
        if loaded['img'].size == 0:
            return self._unreadable(filename, f"it decodes to an empty image of shape {loaded['img'].shape}")
        return loaded

    def _unreadable(self, filename, reason):
        if self.on_error == 'raise':
            raise UnreadableImageError(
                f"image {filename} cannot be loaded: {reason}. Replace or remove the file, or skip such files "
                f"with dict(type='CheckedLoadImageFromFile', on_error='skip') in the training pipeline")
        if filename not in self.skipped:  # once per file and worker process
            self.skipped.add(filename)
            print_log(f'CheckedLoadImageFromFile: skipped image {filename}: {reason}', logger='current',
                      level=logging.WARNING)
        return None

    def __repr__(self):
        return f'{super().__repr__()[:-1]}, on_error={self.on_error!r})'


def _positive_int(owner, name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{owner}: {name} must be a positive integer, got {value!r}')
    return int(value)


def _shown(values, limit=8):
    """The first `limit` of sorted `values`, as a list that says how many more there are."""
    values = [value.item() if hasattr(value, 'item') else value for value in values]
    more = f' and {len(values) - limit} more' if len(values) > limit else ''
    return f"{', '.join(str(value) for value in values[:limit])}{more}"


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Raise :class:`LabelOutOfRangeError` when a segmentation map holds a label that is neither one of the
    ``num_classes`` classes nor the ignore index.

    Out of range labels reach the loss as they are: cross-entropy indexes out of bounds (an error far
    from the data on the CPU, a device-side assert on CUDA), or a 16-class map trains a 150-class head
    without a word. Place it right after mmseg's ``LoadAnnotations``, so it sees the labels as the model
    will (after ``reduce_zero_label`` and the dataset's label map) and before augmentations pad with the
    ignore index. Registered in mmengine's TRANSFORMS, which mmseg pipelines search.

    Args:
        num_classes (int): The classes of the model's decode heads.
        ignore_index (int): The label the loss ignores (mmseg's decode heads: 255).
    """

    def __init__(self, num_classes, ignore_index=255):
        self.num_classes = _positive_int('CheckSegLabels', 'num_classes', num_classes)
        self.ignore_index = ignore_index

    def transform(self, results):
        labels = results['gt_seg_map']
        bad = ((labels < 0) | (labels >= self.num_classes)) & (labels != self.ignore_index)
        if bad.any():
            reduced = (' (after reduce_zero_label: 0 became the ignore index, the other labels dropped by 1)'
                       if results.get('reduce_zero_label') else '')
            raise LabelOutOfRangeError(
                f"segmentation map {results.get('seg_map_path')} holds labels {_shown(np.unique(labels[bad]))} "
                f'outside the {self.num_classes} classes (0-{self.num_classes - 1}) and the ignore index '
                f'{self.ignore_index}{reduced}. Fix the map, or give the decode heads and this check the '
                "dataset's number of classes (num_classes)")
        return results

    def __repr__(self):
        return f'{type(self).__name__}(num_classes={self.num_classes}, ignore_index={self.ignore_index})'


@TRANSFORMS.register_module()
class CheckClassLabels(BaseTransform):
    """Raise :class:`LabelOutOfRangeError` when a classification sample's ``gt_label`` (one label or a
    multi-label list) lies outside ``0 .. num_classes - 1``.

    Without it a label past the head's classes stops training at the loss (``IndexError: Target 12 is out
    of bounds``, or a device-side assert on CUDA) with no word of the sample. Place it before
    ``PackInputs``. Registered in mmengine's TRANSFORMS, which mmpretrain pipelines search.

    Args:
        num_classes (int): The classes of the model's head.
    """

    def __init__(self, num_classes):
        self.num_classes = _positive_int('CheckClassLabels', 'num_classes', num_classes)

    def transform(self, results):
        labels = np.asarray(results['gt_label']).reshape(-1)
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if bad.size:
            raise LabelOutOfRangeError(
                f"sample {results.get('img_path', '(in memory)')} has label {_shown(bad)} outside the "
                f'{self.num_classes} classes (0-{self.num_classes - 1}). Fix its label (annotation file or class '
                "folders), or give the model's head, data_preprocessor and this check the dataset's number of "
                'classes (num_classes)')
        return results

    def __repr__(self):
        return f'{type(self).__name__}(num_classes={self.num_classes})'
