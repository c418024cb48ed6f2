"""Kernels for VMamba: cross-scan, cross-merge, selective scan, the fused SS2D core and LayerNorm.

Standalone (torch, plus triton where present). Every op is differentiable,
registered with ``torch.library`` so ``torch.compile`` keeps it in one graph,
and takes ``backend=None | 'torch' | 'triton'``; see ``kernels/README.md``.
"""
from .dispatch import BackendUnavailableError, available_backends, get_backend, set_backend
from .ops import cross_merge, cross_scan, layer_norm, selective_scan, ss2d

__all__ = [
    'cross_scan', 'cross_merge', 'selective_scan', 'ss2d', 'layer_norm', 'set_backend', 'get_backend',
    'available_backends', 'BackendUnavailableError'
]
