"""ImageNet-shaped random data held in memory: throughput and launch checks without a dataset on disk."""
import numpy as np
from mmengine.dataset import Compose
from mmengine.registry import DATASETS
from torch.utils.data import Dataset


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
        for name, value in dict(num_samples=num_samples, image_size=image_size, num_classes=num_classes,
                                distinct_images=distinct_images).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'SyntheticImageNet: {name} must be a positive integer, got {value!r}')
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, (distinct_images, image_size, image_size, 3), dtype=np.uint8)
        self.labels = rng.integers(0, num_classes, num_samples)
        self.metainfo = dict(classes=tuple(str(label) for label in range(num_classes)))
        self.pipeline = Compose(pipeline)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        image = self.images[index % len(self.images)]
        sample = dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2], sample_idx=index,
                      gt_label=int(self.labels[index]))
        return self.pipeline(sample)
