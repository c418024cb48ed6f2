"""vmamba_mm: VMamba (Visual State Space Model) as an OpenMMLab backbone for mmpretrain, mmdet and mmseg.

`import vmamba_mm` (or `custom_imports=dict(imports=['vmamba_mm'])` in a config) registers the `VMamba`
backbone in the MODELS registries of mmpretrain, mmdet and mmseg, its checked image loading in mmengine's
TRANSFORMS (which all three search), and vmamba_mm's engine parts (CPU distributed wrapper, CPU autocast optimizer wrapper,
atomic checkpointing, non-finite loss hook, resumable loop) in mmengine's, and the ImageNet classifiers in
mmpretrain's model zoo (``mmpretrain.list_models('*vmamba*')``, ``get_model``; see :mod:`vmamba_mm.model_zoo`).
"""
from .compat import disable_incompatible_multimodal

# Must run before anything imports mmpretrain.models (mmdet.models imports it too).
disable_incompatible_multimodal()

from . import datasets, engine, registry  # noqa: E402,F401  registration happens on import
from .model_zoo import register_model_zoo  # noqa: E402

register_model_zoo()

__version__ = '0.1.0'
