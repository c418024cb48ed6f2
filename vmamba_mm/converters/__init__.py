"""Official VMamba key layouts -> vmamba_mm names: a pure key map (files are read by vmamba_mm.loading)."""
from .official import (IncompatibleCheckpointError, OfficialConversion, convert_official, infer_arch,
                       is_official_layout, official_to_mm, unwrap_state_dict)

__all__ = [
    'IncompatibleCheckpointError', 'OfficialConversion', 'convert_official', 'infer_arch', 'is_official_layout',
    'official_to_mm', 'unwrap_state_dict'
]
