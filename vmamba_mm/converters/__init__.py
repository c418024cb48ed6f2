"""Checkpoint conversion: official VMamba layouts -> vmamba_mm."""
from .official import (IncompatibleCheckpointError, infer_arch, is_official_layout, load_checkpoint_file,
                       load_pretrained_backbone, load_state_dict_strictly, official_to_mm, unwrap_state_dict)

__all__ = [
    'IncompatibleCheckpointError', 'infer_arch', 'is_official_layout', 'load_checkpoint_file',
    'load_pretrained_backbone', 'load_state_dict_strictly', 'official_to_mm', 'unwrap_state_dict'
]
