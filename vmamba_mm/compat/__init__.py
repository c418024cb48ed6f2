"""Compatibility shims between the pinned OpenMMLab stack and current PyTorch / transformers.

Each shim is small, scoped and documented where it lives; none edits site-packages.
"""
from .checkpoint import checkpoint_safe_globals, trusted_checkpoint_globals
from .multimodal import disable_incompatible_multimodal
from .torch_compile import compile_forward, compile_options_of, compile_settings_for, vmamba_compile_settings

__all__ = [
    'checkpoint_safe_globals', 'compile_forward', 'compile_options_of', 'compile_settings_for',
    'disable_incompatible_multimodal', 'trusted_checkpoint_globals', 'vmamba_compile_settings'
]
