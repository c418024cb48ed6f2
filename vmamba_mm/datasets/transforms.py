"""Image loading that names the file it cannot read, and can skip such files instead of crashing."""
import logging

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS


class UnreadableImageError(OSError):
    """An image file of the dataset is missing, empty, corrupt or not an image."""


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's `LoadImageFromFile` (same arguments) with a clear answer to files it cannot read.

    Registered in mmengine's TRANSFORMS, so mmpretrain, mmdet and mmseg pipelines find it by name.

    Args:
        on_error (str): What a missing, empty, corrupt or non-image file does. ``'raise'`` (default):
            :class:`UnreadableImageError` naming the file and the reason. ``'skip'``: a warning names
            the file and the dataset serves another sample in its place (mmengine's datasets draw a
            random other index, up to ``max_refetch`` times). Skipping is for training sets: mmengine's
            datasets in test mode refuse a skipped sample, since a metric over fewer images would
            mislead.
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
