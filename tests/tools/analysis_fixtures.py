"""Shared pieces of the analysis-tool tests: a tiny classifier config, a checkpoint of it, PNG checks."""
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TINY_ARCH = dict(dims=16, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)


def write_tiny_classifier_config(folder: Path, num_classes: int = 10) -> Path:
    """A VMamba classifier config (mmpretrain) small enough for CPU tests; no dataset needed."""
    config = folder / 'tiny_classifier.py'
    bases = [f'{REPO}/configs/_base_/models/vmamba_cls.py', f'{REPO}/configs/_base_/default_runtime_cls.py']
    config.write_text(f"""_base_ = {bases!r}
model = dict(
    backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH!r}), drop_path_rate=0.0),
    head=dict(num_classes={num_classes}, in_channels=128),
    train_cfg=None)
data_preprocessor = dict(num_classes={num_classes}, mean=[127.5] * 3, std=[127.5] * 3)
""")
    return config


def write_checkpoint(model: torch.nn.Module, path: Path, seed: int) -> Path:
    """An mmengine-style checkpoint of ``model`` with its weights redrawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {key: torch.randn(value.shape, generator=generator) * 0.1 if value.is_floating_point() else value
                  for key, value in model.state_dict().items()}
    torch.save(dict(state_dict=state_dict, meta=dict(epoch=1)), path)
    return path


def write_image(path: Path, size=(48, 40)) -> Path:
    """A deterministic colourful RGB test image of (height, width) ``size``."""
    rows, cols = np.mgrid[:size[0], :size[1]]
    image = np.stack([rows * 5 % 256, cols * 7 % 256, (rows + cols) * 3 % 256], -1).astype(np.uint8)
    image[size[0] // 4:size[0] // 2, size[1] // 4:size[1] // 2] = (255, 0, 0)
    Image.fromarray(image).save(path)
    return path


def check_png(path: Path, min_width: int, min_height: int, max_bytes: int = 200_000) -> np.ndarray:
    """Asserts that ``path`` is a non-blank PNG of at least the given size and at most ``max_bytes``."""
    assert path.is_file(), f'{path} was not written'
    assert path.stat().st_size <= max_bytes, f'{path} is {path.stat().st_size} bytes'
    image = np.asarray(Image.open(path).convert('RGB'))
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, f'{path} is only {width}x{height}'
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 16, f'{path} is nearly blank ({len(colours)} colours)'
    return image
