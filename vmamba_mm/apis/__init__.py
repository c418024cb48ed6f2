"""Inference with vmamba_mm configs and checkpoints: the inferencers of mmpretrain, mmdet and mmseg, loading
their weights strictly through :mod:`vmamba_mm.loading` (official VMamba checkpoints converted), and the drawing
that demo/image_demo.py and tools/analysis_tools/browse_dataset.py share.

    from vmamba_mm.apis import init_inferencer, predict
    inferencer = init_inferencer('configs/detection/mask-rcnn_vmamba-demo_shapes.py', 'epoch_4.pth')
    (sample, ) = predict(inferencer, ['image.jpg'])

The inferencer classes import their library (mmdet, mmseg: optional dependencies) when first named.
"""
import importlib

from .inference import image_demo, init_inferencer, predict, summarize, write_pictures
from .visualization import browse_dataset, build_visualizer, draw_sample

# Each class lives in the module of its library, imported on first use.
_INFERENCERS = {
    'ImageClassificationInferencer': 'classification',
    'DetInferencer': 'detection',
    'MMSegInferencer': 'segmentation',
}

__all__ = ['browse_dataset', 'build_visualizer', 'draw_sample', 'image_demo', 'init_inferencer', 'predict',
           'summarize', 'write_pictures', *_INFERENCERS]


def __getattr__(name):
    if name in _INFERENCERS:
        return getattr(importlib.import_module(f'.{_INFERENCERS[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
