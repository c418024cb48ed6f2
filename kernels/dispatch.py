"""Which backend runs an op: per call, else the global choice, else automatic.

Automatic means triton for CUDA tensors when triton is importable, torch
otherwise. Falling back to torch on a GPU is slow, so it warns once instead of
happening silently.
"""
import importlib.util
import os
import warnings

import torch

BACKENDS = ('torch', 'triton')
AUTO = 'auto'

_TRITON_IMPORTABLE = importlib.util.find_spec('triton') is not None
_global_backend = None  # None means automatic
_warned_cuda_fallback = False


class BackendUnavailableError(RuntimeError):
    """A backend was requested that cannot run on this machine or device."""


def available_backends() -> tuple:
    """Backends importable here (triton may still need a CUDA device or TRITON_INTERPRET=1)."""
    return BACKENDS if _TRITON_IMPORTABLE else ('torch',)


def _check_name(name):
    if name not in BACKENDS:
        raise ValueError(f'unknown kernel backend {name!r}; valid backends: {", ".join(BACKENDS)} '
                         f'(or None / {AUTO!r} for automatic)')


def set_backend(name) -> None:
    """Set the backend for all later calls; None or 'auto' restores automatic choice."""
    global _global_backend
    if name is not None and name != AUTO:
        _check_name(name)
        if name not in available_backends():
            raise BackendUnavailableError(f'kernel backend {name!r} is not importable here; '
                                          f'available: {", ".join(available_backends())}')
    else:
        name = None
    _global_backend = name


def get_backend(device=None) -> str:
    """The backend a call without ``backend=`` uses for tensors on ``device`` (default: CPU)."""
    return resolve_backend(None, torch.device('cpu') if device is None else torch.device(device))


def interpreting() -> bool:
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def resolve_backend(backend, device: torch.device) -> str:
    global _warned_cuda_fallback
    if backend is None or backend == AUTO:
        backend = _global_backend
    if backend is None:
        if device.type == 'cuda' and _TRITON_IMPORTABLE:
            return 'triton'
        if device.type == 'cuda' and not _warned_cuda_fallback:
            _warned_cuda_fallback = True
            warnings.warn('kernels: triton is not importable, so SS2D ops on CUDA fall back to the '
                          "much slower 'torch' backend; install triton to get the fast path",
                          RuntimeWarning, stacklevel=3)
        return 'torch'
    _check_name(backend)
    if backend == 'triton':
        if not _TRITON_IMPORTABLE:
            raise BackendUnavailableError("kernel backend 'triton' requested but triton is not importable")
        if device.type != 'cuda' and not interpreting():
            raise BackendUnavailableError(
                f"kernel backend 'triton' needs CUDA tensors, got {device.type}; use backend='torch' "
                'or set TRITON_INTERPRET=1 before importing triton to run the kernels on CPU')
    return backend
