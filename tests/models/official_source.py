"""Import the official VMamba classification model for side-by-side tests, on the CPU.

The official source is never part of this repository: point ``VMAMBA_OFFICIAL_SRC`` at a
checkout of github.com/MzeroMiko/VMamba. Its model file imports timm, fvcore and the
Mamba-2 helpers at module level; VMamba itself needs none of them (only DropPath, which is
the identity in eval mode), so light stand-ins are installed while it is imported. Its torch
selective-scan fallback is used, and its cross-scan, which enters ``torch.cuda.device`` even
for CPU tensors, runs under :func:`cpu_device_context`.
"""
import contextlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import torch
import torch.nn as nn

ENV_VAR = 'VMAMBA_OFFICIAL_SRC'


def official_models_dir():
    """``classification/models`` of the official checkout, or None when unavailable."""
    root = os.environ.get(ENV_VAR)
    if not root:
        return None
    models_dir = Path(root) / 'classification' / 'models'
    return models_dir if (models_dir / 'vmamba.py').is_file() else None


class _EvalOnlyDropPath(nn.Identity):
    """timm's DropPath in eval mode; the side-by-side tests never train the official model."""

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob


def _module(name, **attributes):
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def _stand_ins():
    unused = None
    return {
        'timm': _module('timm'),
        'timm.models': _module('timm.models'),
        'timm.models.layers': _module('timm.models.layers', DropPath=_EvalOnlyDropPath,
                                      trunc_normal_=nn.init.trunc_normal_),
        'fvcore': _module('fvcore'),
        'fvcore.nn': _module('fvcore.nn', FlopCountAnalysis=unused, flop_count_str=unused, flop_count=unused,
                             parameter_count=unused),
        'mamba2': _module('mamba2'),
        'mamba2.ssd_minimal': _module('mamba2.ssd_minimal', selective_scan_chunk_fn=unused),
    }


def import_official_vmamba(models_dir):
    """The official ``vmamba`` module, imported under a private name."""
    saved = {name: sys.modules.get(name) for name in (*_stand_ins(), 'csm_triton', 'csms6s')}
    sys.modules.update(_stand_ins())
    sys.path.insert(0, str(models_dir))
    try:
        spec = importlib.util.spec_from_file_location('official_vmamba', models_dir / 'vmamba.py')
        module = importlib.util.module_from_spec(spec)
        with contextlib.redirect_stdout(open(os.devnull, 'w')):  # it prints about missing CUDA kernels
            spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(models_dir))
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


@contextlib.contextmanager
def cpu_device_context():
    """Let ``torch.cuda.device(cpu_tensor.device)`` be a no-op, as the official cross-scan needs."""
    cuda_device = torch.cuda.device

    def device(target):
        if torch.device(target).type == 'cpu':
            return contextlib.nullcontext()
        return cuda_device(target)

    torch.cuda.device = device
    try:
        yield
    finally:
        torch.cuda.device = cuda_device
