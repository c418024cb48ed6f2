"""vmamba_mm: VMamba (Visual State Space Model) as an OpenMMLab backbone for mmpretrain, mmdet and mmseg."""
from .compat import disable_incompatible_multimodal

# Must run before anything imports mmpretrain.models (mmdet.models imports it too).
disable_incompatible_multimodal()

__version__ = '0.1.0'
