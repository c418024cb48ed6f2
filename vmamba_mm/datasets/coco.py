"""COCO-style instance annotations checked while the dataset parses them.

mmdet's `CocoDataset` hands polygons to pycocotools as they are: a NaN coordinate makes its rasteriser
allocate without bound until the process is killed for memory, with no message; an empty ``segmentation``
list becomes ``KeyError: 'mask'`` in `LoadAnnotations`; boxes without area and annotations of unknown
categories are dropped without a word. :class:`CheckedCocoDataset` checks every annotation of the file
when the dataset is built, so a run stops before training starts and names the image and annotation of
the first bad one; a training set may instead skip bad annotations, counted and reported.
"""
import logging
import math
import numbers
from collections import Counter

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .checks import BadAnnotationError

# Annotation tools round outlines to the pixel grid, and a polygon along the image border may sit half a
# pixel beyond it (pixel corners vs centres): coordinates up to this far outside the image are accepted.
OUTSIDE_TOLERANCE = 1.0


class AnnotationProblem(Exception):
    """What is wrong with one annotation: `kind` (counted when skipping) and a sentence about the values."""

    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind = kind


def _numbers(owner, values):
    """The sum of `values` when it is a flat list of numbers, else AnnotationProblem.

    Plain Python rather than numpy: the lists are short, and a COCO training file holds close to a
    million of them. sum() refuses nulls, strings and nested lists, and is NaN or inf when a value is."""
    try:
        if isinstance(values, (list, tuple)):
            return sum(values)
    except TypeError:
        pass
    raise AnnotationProblem('malformed annotation', f'{owner} {_short(values)} is not a list of numbers')


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else f'{text[:limit - 5]} ...{text[-1]}'


def _check_inside(owner, total, xs, ys, width, height):
    """`xs`, `ys` (whose sum is `total`) finite and inside the image, give or take OUTSIDE_TOLERANCE."""
    if not math.isfinite(total) and not all(map(math.isfinite, xs + ys)):  # else huge values overflowed the sum
        raise AnnotationProblem('non-finite coordinates', f'{owner} holds NaN or inf coordinates')
    low_x, high_x, low_y, high_y = min(xs), max(xs), min(ys), max(ys)
    if (min(low_x, low_y) < -OUTSIDE_TOLERANCE or high_x > width + OUTSIDE_TOLERANCE
            or high_y > height + OUTSIDE_TOLERANCE):
        raise AnnotationProblem(
            'coordinates outside the image',
            f'{owner} spans x {low_x:g}..{high_x:g}, y {low_y:g}..{high_y:g}, outside the {width:g}x{height:g} image')


def check_annotation(ann, width, height, category_ids, needs_mask):
    """Raise :class:`AnnotationProblem` when `ann` (one entry of a COCO file's ``annotations``, on an image
    of `width` x `height`) is unusable; `category_ids` are the file's categories, `needs_mask` says whether
    the pipeline loads masks."""
    if ann.get('category_id') not in category_ids:
        raise AnnotationProblem('unknown category', f"category_id {ann.get('category_id')!r} is not among the "
                                                    f"file's categories {_short(sorted(category_ids))}")
    box = ann.get('bbox')
    total = _numbers('bbox', box)
    if len(box) != 4:
        raise AnnotationProblem('malformed annotation', f'bbox {_short(box)} is not [x, y, width, height]')
    if not math.isfinite(total) and not all(map(math.isfinite, box)):
        raise AnnotationProblem('non-finite coordinates', f'bbox {box} holds NaN or inf')
    x, y, box_width, box_height = box
    if box_width <= 0 or box_height <= 0:
        raise AnnotationProblem('non-positive box size', f'bbox {box} has a width or height <= 0')
    _check_inside(f'bbox {box}', 0.0, [x, x + box_width], [y, y + box_height], width, height)
    if 'area' in ann and not math.isfinite(_numbers('area', [ann['area']])):
        raise AnnotationProblem('non-finite coordinates', f"area {ann['area']} is NaN or inf")

    segmentation = ann.get('segmentation')
    if segmentation is None or (isinstance(segmentation, list) and not segmentation):
        if needs_mask:
            raise AnnotationProblem(
                'empty segmentation', f'segmentation is {"missing" if segmentation is None else "empty ([])"}, '
                                      'but the pipeline loads masks (LoadAnnotations with_mask=True)')
    elif isinstance(segmentation, list):  # polygons, one per part of the object
        for index, polygon in enumerate(segmentation):
            total = _numbers(f'polygon {index}', polygon)
            if len(polygon) % 2:
                raise AnnotationProblem('malformed annotation', f'polygon {index} has {len(polygon)} '
                                                                'coordinates, not (x, y) pairs')
            if len(polygon) < 6:
                raise AnnotationProblem('polygon of fewer than 3 points',
                                        f'polygon {index} has {len(polygon)} coordinates; a polygon needs '
                                        'at least 3 (x, y) points')
            _check_inside(f'polygon {index}', total, polygon[0::2], polygon[1::2], width, height)
    elif isinstance(segmentation, dict):  # run-length encoding (crowd regions)
        size = segmentation.get('size')
        if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
            raise AnnotationProblem('malformed annotation', f'RLE size {size!r} is not the image size '
                                                            f'[height, width] = [{height:g}, {width:g}]')
        counts = segmentation.get('counts')
        if isinstance(counts, list):  # uncompressed: run lengths that cover the image
            covered = _numbers('RLE counts', counts)
            if min(counts, default=0) < 0:
                raise AnnotationProblem('malformed annotation', 'RLE counts hold negative run lengths')
            if covered != height * width:
                raise AnnotationProblem('malformed annotation', f'RLE counts cover {covered:g} pixels, not the '
                                                                f"image's {height * width:g}")
        elif not isinstance(counts, (str, bytes)):
            raise AnnotationProblem('malformed annotation', f'RLE counts {_short(counts)} are neither a list of '
                                                            'run lengths nor a compressed string')
    else:
        raise AnnotationProblem('malformed annotation', f'segmentation {_short(segmentation)} is neither a list '
                                                        'of polygons nor an RLE dict')


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's `CocoDataset` (same arguments and results) that checks each annotation while it parses the file.

    Every annotation, ``ignore`` and crowd ones included (evaluation rasterises them too), must have a known
    ``category_id``; a finite box of positive width and height inside the image; finite polygons of at least
    3 points inside the image, or an RLE of the image's size; and, where the pipeline loads masks, a
    segmentation. Coordinates may lie up to ``OUTSIDE_TOLERANCE`` pixels outside the image. Image entries
    need a positive width and height. Annotations that pass are parsed as `CocoDataset` parses them (boxes
    under a pixel, annotations of categories outside ``metainfo['classes']`` are still left out).

    Args:
        on_bad_annotation (str): ``'raise'`` (default): :class:`BadAnnotationError` naming the annotation
            file, the image id and file and the annotation id, while the dataset is built. ``'skip'``: leave
            bad annotations out, keep them in ``skipped_annotations`` (image id, annotation id, kind, detail)
            and log how many of each kind. Skipping is for training sets: an evaluator reads the annotation
            file itself, so it would still score (and rasterise) what the dataset skipped.
        **kwargs: `CocoDataset` arguments.
    """

    ACTIONS = ('raise', 'skip')

    def __init__(self, *args, on_bad_annotation='raise', **kwargs):
        if on_bad_annotation not in self.ACTIONS:
            raise ValueError(f'CheckedCocoDataset: on_bad_annotation must be one of {self.ACTIONS}, '
                             f'got {on_bad_annotation!r}')
        if on_bad_annotation == 'skip' and kwargs.get('test_mode', False):
            raise ValueError("CheckedCocoDataset: on_bad_annotation='skip' is for training sets; in test mode the "
                             'evaluator reads the annotation file itself and would still score the skipped '
                             'annotations. Fix the annotation file instead')
        self.on_bad_annotation = on_bad_annotation
        self.skipped_annotations = []
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        # The pipeline is built before the annotations are loaded (BaseDataset.__init__).
        self._needs_mask = any(getattr(transform, 'with_mask', False) for transform in self.pipeline.transforms)
        self._annotation_count = 0
        self.skipped_annotations = []
        data_list = super().load_data_list()
        if self.skipped_annotations:
            kinds = Counter(kind for _, _, kind, _ in self.skipped_annotations)
            img_id, ann_id, _, detail = self.skipped_annotations[0]
            print_log(
                f'CheckedCocoDataset: skipped {len(self.skipped_annotations)} of {self._annotation_count} annotations '
                f"in {self.ann_file} ({', '.join(f'{count} {kind}' for kind, count in kinds.most_common())}); "
                f'the first: image {img_id}, annotation {ann_id}: {detail}', logger='current', level=logging.WARNING)
        return data_list

    def parse_data_info(self, raw_data_info):
        image = raw_data_info['raw_img_info']
        where = f"{self.ann_file}: image {image['img_id']} ({image.get('file_name')})"
        width, height = image.get('width'), image.get('height')
        if not all(isinstance(size, numbers.Real) and math.isfinite(size) and size > 0 for size in (width, height)):
            raise BadAnnotationError(f'{where} has width {width!r} and height {height!r}; both must be positive '
                                     'numbers. Fix the image entry')
        usable = []
        for ann in raw_data_info['raw_ann_info']:
            self._annotation_count += 1
            try:
                check_annotation(ann, width, height, self.coco.cats, self._needs_mask)
            except AnnotationProblem as problem:
                if self.on_bad_annotation == 'raise':
                    remedy = ('(the evaluator reads this file too, so evaluation cannot skip it)' if self.test_mode else
                              "or skip bad annotations with on_bad_annotation='skip' in the training dataset")
                    raise BadAnnotationError(
                        f"{where}, annotation {ann.get('id')}: {problem}. Fix or remove the annotation {remedy}"
                    ) from None
                self.skipped_annotations.append((image['img_id'], ann.get('id'), problem.kind, str(problem)))
                continue
            usable.append(ann)
        return super().parse_data_info(dict(raw_data_info, raw_ann_info=usable))
