"""Kernels for VMamba's SS2D block: cross-scan, cross-merge, selective scan and the fused SS2D core.

Standalone (torch, plus triton where present). Every op is differentiable,
registered with ``torch.library`` so ``torch.compile`` keeps it in one graph,
and takes ``backend=None | 'torch' | 'triton'``; see ``kernels/README.md``.
This module is the package's whole public face: code outside ``kernels``
imports nothing from its submodules.
"""
from .dispatch import BACKENDS, BackendUnavailableError, available_backends, get_backend, set_backend
from .ops import cross_merge, cross_scan, reference_decompositions, selective_scan, ss2d

__all__ = [
    'cross_scan', 'cross_merge', 'selective_scan', 'ss2d', 'BACKENDS', 'set_backend', 'get_backend',
    'available_backends', 'BackendUnavailableError', 'reference_decompositions'
]
