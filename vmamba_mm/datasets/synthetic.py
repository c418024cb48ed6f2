"""Random data shaped like the paper's three datasets, held in memory: throughput and launch checks without a
dataset on disk.

Each dataset serves samples as the loading transforms of its task would leave them (decoded image, annotations),
so that the rest of a config's training pipeline (the recipe's augmentations and packing) runs on them as it does on
real data. A small pool of samples is drawn once from a seed and served in turn; every sample is a fresh copy, so a
transform that writes in place never changes the pool.
"""
import numpy as np
from mmengine.dataset import Compose
from mmengine.registry import DATASETS
from torch.utils.data import Dataset


def _check_positive(owner, **values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f'{owner}: {name} must be a positive integer, got {value!r}')


def _check_sizes(owner, name, sizes):
    """``sizes`` as a list of (height, width) pairs of positive integers."""
    try:
        pairs = [tuple(size) for size in sizes]
    except TypeError:
        pairs = []
    if not pairs or any(len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair) for pair in pairs):
        raise ValueError(f'{owner}: {name} must be (height, width) pairs of positive integers, got {sizes!r}')
    return pairs


@DATASETS.register_module()
class SyntheticImageNet(Dataset):
    """Random ``image_size`` × ``image_size`` RGB images with random labels, as many as ImageNet-1k has.

    A pool of ``distinct_images`` images is drawn once and served in turn, so loading costs no decoding
    and no random generation: what a run measures is the model, the optimizer and the communication.
    Registered in mmengine's DATASETS, so mmpretrain configs find it by name; its samples go through
    the config's ``pipeline`` like decoded images (``img`` HWC uint8, ``gt_label``), e.g.
    ``[dict(type='PackInputs')]``.

    Args:
        num_samples (int): Length of an epoch (default: ImageNet-1k's training set, 1,281,167).
        image_size (int): Height and width.
        num_classes (int): Labels are drawn from ``range(num_classes)``.
        distinct_images (int): Size of the image pool.
        seed (int): Seed of the pool and the labels; the same seed gives the same data everywhere.
        pipeline (list[dict]): Transforms applied to each sample.
    """

    def __init__(self, num_samples=1_281_167, image_size=224, num_classes=1000, distinct_images=64, seed=0,
                 pipeline=()):
        _check_positive('SyntheticImageNet', num_samples=num_samples, image_size=image_size, num_classes=num_classes,
                        distinct_images=distinct_images)
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, (distinct_images, image_size, image_size, 3), dtype=np.uint8)
        self.labels = rng.integers(0, num_classes, num_samples)
        self.metainfo = dict(classes=tuple(str(label) for label in range(num_classes)))
        self.pipeline = Compose(pipeline)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        image = self.images[index % len(self.images)].copy()
        sample = dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2], sample_idx=index,
                      gt_label=int(self.labels[index]))
        return self.pipeline(sample)


@DATASETS.register_module()
class SyntheticCocoInstances(Dataset):
    """Random COCO-shaped images with boxes and instance masks, as many as COCO train2017 has.

    Samples are what mmdet's ``LoadImageFromFile`` and ``LoadAnnotations(with_bbox=True, with_mask=True)``
    produce (``img`` HWC uint8, ``gt_bboxes`` as ``HorizontalBoxes``, ``gt_bboxes_labels``, ``gt_masks`` as
    ``BitmapMasks``, ``gt_ignore_flags``), so a detection config's pipeline from its resize on applies as it is.
    The default sizes are COCO's most frequent ones (640 × 480 and 640 × 427, landscape and portrait), which the
    paper's 1x pipeline resizes to about 1333 × 800. Each object is an ellipse inside its box, as a mask.

    Args:
        num_samples (int): Length of an epoch (default: COCO train2017 images with annotations, 117,266).
        image_sizes (list[tuple[int, int]]): (height, width) of the pool's images, used in turn.
        num_classes (int): Labels are drawn from ``range(num_classes)``.
        objects_per_image (int): Instances in each image (COCO averages about 7).
        distinct_images (int): Size of the pool.
        seed (int): Seed of the pool.
        pipeline (list[dict]): Transforms applied to each sample.
    """

    def __init__(self, num_samples=117_266, image_sizes=((480, 640), (427, 640), (640, 480), (640, 427)),
                 num_classes=80, objects_per_image=7, distinct_images=8, seed=0, pipeline=()):
        _check_positive('SyntheticCocoInstances', num_samples=num_samples, num_classes=num_classes,
                        objects_per_image=objects_per_image, distinct_images=distinct_images)
        image_sizes = _check_sizes('SyntheticCocoInstances', 'image_sizes', image_sizes)
        rng = np.random.default_rng(seed)
        self.num_samples = num_samples
        self.pool = [self._draw(rng, image_sizes[index % len(image_sizes)], num_classes, objects_per_image)
                     for index in range(distinct_images)]
        self.metainfo = dict(classes=tuple(str(label) for label in range(num_classes)))
        self.pipeline = Compose(pipeline)

    @staticmethod
    def _draw(rng, size, num_classes, objects):
        height, width = size
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        # Boxes of 1/16 to 1/2 of each side, anywhere in the image.
        box_sizes = rng.uniform(1 / 16, 1 / 2, (objects, 2)) * (width, height)
        corners = rng.uniform(0, 1, (objects, 2)) * ((width, height) - box_sizes)
        boxes = np.concatenate([corners, corners + box_sizes], axis=1).astype(np.float32)
        rows, cols = np.mgrid[:height, :width]
        centres, radii = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2
        masks = np.stack([((cols - cx) / rx)**2 + ((rows - cy) / ry)**2 <= 1
                          for (cx, cy), (rx, ry) in zip(centres, radii)]).astype(np.uint8)
        labels = rng.integers(0, num_classes, objects)
        return image, boxes, masks, labels

    def __len__(self):
        return self.num_samples

    def get_data_info(self, index):
        """Image size and id, as mmdet's aspect-ratio batch sampler reads them before loading."""
        height, width = self.pool[index % len(self.pool)][0].shape[:2]
        return dict(img_id=index, height=height, width=width)

    def __getitem__(self, index):
        from mmdet.structures.bbox import HorizontalBoxes
        from mmdet.structures.mask import BitmapMasks

        image, boxes, masks, labels = self.pool[index % len(self.pool)]
        height, width = image.shape[:2]
        sample = dict(img=image.copy(), img_shape=(height, width), ori_shape=(height, width), img_id=index,
                      img_path=f'synthetic/{index:012d}.jpg', sample_idx=index,
                      gt_bboxes=HorizontalBoxes(boxes.copy()), gt_bboxes_labels=labels.copy(),
                      gt_ignore_flags=np.zeros(len(labels), dtype=bool),
                      gt_masks=BitmapMasks(masks.copy(), height, width))
        return self.pipeline(sample)


@DATASETS.register_module()
class SyntheticSegmentation(Dataset):
    """Random ADE20K-shaped images with label maps, as many as ADE20K's training set has.

    Samples are what mmseg's ``LoadImageFromFile`` and ``LoadAnnotations`` produce (``img`` HWC uint8,
    ``gt_seg_map`` uint8 with ``seg_fields``), so a segmentation config's pipeline from its resize on applies as
    it is. The label map is made of rectangular regions of random classes (a region-sized structure, so the
    pipeline's category-ratio crop check behaves as on real scenes), with ``ignore_index`` where ADE20K's
    "other" pixels would be, i.e. as after ``reduce_zero_label``.

    Args:
        num_samples (int): Length of an epoch (default: ADE20K's 20,210 training images).
        image_size (tuple[int, int]): (height, width); the default is ADE20K's most frequent landscape size.
        num_classes (int): Labels are drawn from ``range(num_classes)``.
        regions (int): The label map is a ``regions`` × ``regions`` grid of classes.
        ignore_index (int): The label of unlabelled pixels.
        distinct_images (int): Size of the pool.
        seed (int): Seed of the pool.
        pipeline (list[dict]): Transforms applied to each sample.
    """

    def __init__(self, num_samples=20_210, image_size=(512, 683), num_classes=150, regions=6, ignore_index=255,
                 distinct_images=8, seed=0, pipeline=()):
        _check_positive('SyntheticSegmentation', num_samples=num_samples, num_classes=num_classes, regions=regions,
                        distinct_images=distinct_images)
        (height, width), = _check_sizes('SyntheticSegmentation', 'image_size', [image_size])
        if not 0 <= ignore_index <= 255 or num_classes > 255:
            raise ValueError(f'SyntheticSegmentation: labels are uint8, so num_classes must be at most 255 and '
                             f'ignore_index within 0..255, got {num_classes} and {ignore_index}')
        rng = np.random.default_rng(seed)
        self.num_samples = num_samples
        self.images = rng.integers(0, 256, (distinct_images, height, width, 3), dtype=np.uint8)
        grid = rng.integers(0, num_classes, (distinct_images, regions, regions)).astype(np.uint8)
        grid[rng.uniform(size=grid.shape) < 0.1] = ignore_index
        rows = np.arange(height) * regions // height
        cols = np.arange(width) * regions // width
        self.label_maps = grid[:, rows[:, None], cols[None, :]]
        self.metainfo = dict(classes=tuple(str(label) for label in range(num_classes)))
        self.ignore_index = ignore_index
        self.pipeline = Compose(pipeline)

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        image = self.images[index % len(self.images)].copy()
        sample = dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2], sample_idx=index,
                      img_path=f'synthetic/{index:08d}.jpg', seg_map_path=f'synthetic/{index:08d}.png',
                      gt_seg_map=self.label_maps[index % len(self.label_maps)].copy(), seg_fields=['gt_seg_map'],
                      reduce_zero_label=False, ignore_index=self.ignore_index)
        return self.pipeline(sample)
