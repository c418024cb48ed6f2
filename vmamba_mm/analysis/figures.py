"""Matplotlib figures of the analysis tools, drawn off-screen and saved as compact PNGs."""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

import numpy as np


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (the tools run headless)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save(figure, path: str, dpi: int = 100) -> str:
    """Write ``figure`` to ``path`` (folders made as needed) and close it; returns the path."""
    if not path.lower().endswith('.png'):
        raise ValueError(f'figures are written as PNG: name the output *.png, got {path}')
    folder = osp.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches='tight')
    pyplot().close(figure)
    return path


def heatmap_row(panels: Sequence[Tuple[str, np.ndarray]], cmap: str = 'RdYlGn', vmin: float = 0.0,
                vmax: float = 1.0, marker: Optional[Tuple[float, float]] = None, image: Optional[np.ndarray] = None,
                panel_size: float = 2.4):
    """One row of titled heat maps sharing a colour bar, optionally led by the input ``image``.

    ``marker`` (row, col), as fractions of the height and width, draws a star on every panel.
    """
    plt = pyplot()
    count = len(panels) + (image is not None)
    figure, axes = plt.subplots(1, count, figsize=(panel_size * count + 0.6, panel_size), squeeze=False)
    axes = list(axes[0])
    if image is not None:
        ax = axes.pop(0)
        ax.imshow(image)
        ax.set_title('input')
        if marker is not None:
            ax.plot(marker[1] * image.shape[1], marker[0] * image.shape[0], 'r*', markersize=10)
        ax.axis('off')
    shown = None
    for ax, (title, values) in zip(axes, panels):
        shown = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation='nearest')
        if marker is not None:
            ax.plot(marker[1] * values.shape[1] - 0.5, marker[0] * values.shape[0] - 0.5, 'r*', markersize=10)
        ax.set_title(title)
        ax.axis('off')
    figure.colorbar(shown, ax=axes, fraction=0.02, pad=0.02)
    return figure
