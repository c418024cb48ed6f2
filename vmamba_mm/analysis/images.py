"""Loading images for the analysis tools and normalising them the way a config's model expects."""
import os
import os.path as osp
from typing import List

import numpy as np
import torch

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def list_images(folder: str, limit: int) -> List[str]:
    """The first ``limit`` image files of ``folder`` and its subfolders, in sorted order."""
    if not osp.isdir(folder):
        raise NotADirectoryError(f'image folder {folder} does not exist')
    found = sorted(
        osp.join(root, name) for root, _, names in os.walk(folder) for name in names
        if name.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise FileNotFoundError(f'no {"/".join(IMAGE_SUFFIXES)} image under {folder}')
    return found[:limit]


def read_rgb(path: str, size=None) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, resized to ``size`` (height, width) when given."""
    from PIL import Image

    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path} does not exist')
    image = Image.open(path).convert('RGB')
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(image)


def normalize(model: torch.nn.Module, rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> the (1, 3, H, W) float input the model's data preprocessor would make."""
    image = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float()
    preprocessor = getattr(model, 'data_preprocessor', None)
    if preprocessor is None or not getattr(preprocessor, '_enable_normalize', False):
        return image[None]
    # The preprocessor flips mmcv's BGR to RGB when asked to convert channels (mmseg spells the flag
    # without the underscore): the model wants RGB then, BGR otherwise.
    converts = getattr(preprocessor, '_channel_conversion', getattr(preprocessor, 'channel_conversion', False))
    if not converts:
        image = image.flip(0)
    return ((image - preprocessor.mean.cpu()) / preprocessor.std.cpu())[None]
