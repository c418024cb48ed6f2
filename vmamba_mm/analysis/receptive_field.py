"""Effective receptive field (ERF, Luo et al. 2016) as in the VMamba paper's ERF figure.

For each image, the gradient of the central position of a feature map (its positive part summed
over channels) with respect to the input pixels; its magnitude, summed over input channels, is averaged over
the images. A large, smooth ERF that reaches the image borders is the "global receptive field"
the paper attributes to SS2D.
"""
from typing import Iterable, Sequence

import numpy as np
import torch


def effective_receptive_field(backbone: torch.nn.Module, images: Iterable[torch.Tensor],
                              stage: int = -1) -> np.ndarray:
    """Mean over ``images`` of |d relu(central output) / d input|, summed over channels: an (H, W) array.

    Args:
        backbone: Returns a tuple of NCHW feature maps (a VMamba backbone).
        images: (1, C, H, W) or (C, H, W) tensors, already normalised, all of one size.
        stage: Index into the backbone's outputs (default: the last one).
    """
    total, count = None, 0
    for image in images:
        image = (image[None] if image.dim() == 3 else image).detach().clone().requires_grad_(True)
        features = backbone(image)[stage]
        height, width = features.shape[-2:]
        # The positive part, as in RepLKNet's ERF: VMamba's outputs pass a LayerNorm, whose
        # plain channel sum is constant (zero at initialisation) and so has no gradient.
        central = features[:, :, height // 2, width // 2].relu().sum()
        grad, = torch.autograd.grad(central, image)
        contribution = grad.abs().sum(dim=(0, 1)).double()
        total = contribution if total is None else total + contribution
        count += 1
    if count == 0:
        raise ValueError('effective_receptive_field needs at least one image')
    return (total / count).cpu().numpy()


def log_scale(erf: np.ndarray, decades: float = 3.0) -> np.ndarray:
    """log10(erf / max), clipped to ``decades`` below the peak and mapped to [0, 1] (1 = peak)."""
    if decades <= 0:
        raise ValueError(f'decades must be positive, got {decades}')
    peak = erf.max()
    if not peak > 0:
        raise ValueError('the ERF is zero everywhere: the output does not depend on the input')
    relative = np.log10(np.maximum(erf / peak, 10.0**-decades))
    return relative / decades + 1.0


def area_ratios(erf: np.ndarray, fractions: Sequence[float] = (0.2, 0.3, 0.5, 0.99)) -> dict:
    """For each fraction t, the smallest share of the image whose pixels hold t of the total contribution.

    (RepLKNet's "high-contribution area ratio": the closer to 1, the more spread out the ERF.)
    """
    ordered = np.sort(erf.ravel())[::-1]
    cumulative = np.cumsum(ordered) / ordered.sum()
    return {fraction: (np.searchsorted(cumulative, fraction) + 1) / ordered.size for fraction in fractions}
