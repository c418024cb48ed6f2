"""Compatibility shims between the pinned OpenMMLab stack and current PyTorch / transformers.

Each shim is small, scoped and documented where it lives; none edits site-packages. This package sits
at the bottom of vmamba_mm: it imports nothing else of it.
"""
from .checkpoint import checkpoint_safe_globals, trusted_checkpoint_globals
from .multimodal import disable_incompatible_multimodal

__all__ = ['checkpoint_safe_globals', 'disable_incompatible_multimodal', 'trusted_checkpoint_globals']
