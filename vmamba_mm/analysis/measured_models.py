"""The model syntax of the measuring tools (``benchmark.py``, ``saved_activations.py``).

One string names the model to measure:

* ``vmamba-<arch>``: a VMamba classifier, an :attr:`VMamba.arch_zoo` name or a dict literal
  (``vmamba-{'dims': 32, 'depths': (1, 1, 1, 1), 'ssm_ratio': 1.0, 'd_state': 1}``), with the
  official classifier head (last stage with its LayerNorm, global average pool, linear);
* a classification config file (``*.py``): its model, built as the analysis tools build it;
* ``timm:<name>``: a timm model with its defaults, for peers measured in the same run;
* ``official:<function>``: a model function of the official ``classification/models/vmamba.py``
  found under ``$VMAMBA_OFFICIAL_SRC``, for side-by-side numbers; never part of this project.
"""
import ast
import contextlib
import functools
import importlib.util
import os
import sys
import warnings
from typing import Optional

import torch
from torch import nn

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class VMambaClassifier(nn.Module):
    """Backbone (last stage, normalized) -> global average pool -> linear: the official classifier."""

    def __init__(self, arch, num_classes: int = 1000, kernel_backend: Optional[str] = None,
                 drop_path_rate: float = 0.0):
        super().__init__()
        from vmamba_mm.models import VMamba
        self.backbone = VMamba(arch=arch, out_indices=(3, ), drop_path_rate=drop_path_rate,
                               kernel_backend=kernel_backend)
        self.head = nn.Linear(self.backbone.dims[-1], num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images)[-1]
        return self.head(features.mean(dim=(2, 3)))


def build_model(spec: str, kernel_backend: Optional[str] = None, drop_path_rate: float = 0.0) -> nn.Module:
    """The model ``spec`` names (see the module docstring), an ``images -> logits`` module.

    ``kernel_backend`` and ``drop_path_rate`` apply to ``vmamba-<arch>`` models; the other kinds keep
    their own settings.
    """
    if spec.startswith('timm:'):
        import timm
        return timm.create_model(spec[len('timm:'):], pretrained=False)
    if spec.startswith('official:'):
        return official_model(spec[len('official:'):])
    if spec.endswith('.py'):
        from vmamba_mm.analysis.models import ClassifierLogits
        from vmamba_mm.analysis.models import build_model as build_config_model
        return ClassifierLogits(build_config_model(spec))
    if spec.startswith('vmamba-'):
        arch = spec[len('vmamba-'):]
        arch = ast.literal_eval(arch) if arch.startswith('{') else arch
        return VMambaClassifier(arch, kernel_backend=kernel_backend, drop_path_rate=drop_path_rate)
    raise ValueError(f'unknown model {spec!r}: use vmamba-<arch>, a config .py, timm:<name> or official:<function>')


def official_model(function_name: str) -> nn.Module:
    """``function_name()`` of the official model file under ``$VMAMBA_OFFICIAL_SRC``."""
    source = os.environ.get('VMAMBA_OFFICIAL_SRC')
    if not source:
        raise ValueError('official:<function> needs VMAMBA_OFFICIAL_SRC pointing at a checkout of the official repo')
    module = _official_module(source)
    if not hasattr(module, function_name):
        raise ValueError(f'the official vmamba.py has no model function {function_name!r}')
    return getattr(module, function_name)()


@functools.lru_cache(maxsize=None)
def _official_module(source: str):
    """The official classification/models/vmamba.py, executed once per process for all its models."""
    models_dir = os.path.join(source, 'classification', 'models')
    model_file = os.path.join(models_dir, 'vmamba.py')
    if not os.path.isfile(model_file):
        raise ValueError(f'VMAMBA_OFFICIAL_SRC={source} is not a checkout of the official repo: '
                         'it has no classification/models/vmamba.py')
    # The official file imports its sibling modules (its Triton cross-scan, its CUDA kernel's wrapper) by plain
    # name, at module level: their folder is importable while the file runs, and only then.
    sys.path.insert(0, models_dir)
    spec = importlib.util.spec_from_file_location('official_vmamba', model_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as error:
        # The official file imports its FLOP counter (fvcore) and the like at module level.
        raise ModuleNotFoundError(f'the official vmamba.py imports {error.name!r}, which is not installed here '
                                  f'(pip install {error.name})', name=error.name) from error
    finally:
        sys.path.remove(models_dir)
    return module


@contextlib.contextmanager
def fallback_is_an_error(kernel_backend: Optional[str]):
    """Use ``kernel_backend`` for SS2D inside the block, and refuse to measure any other one.

    The kernels package warns when it falls back from a backend it cannot run; here that warning is an
    error, so no number is reported under the wrong backend's name. The global choice is restored on exit.
    """
    import kernels
    with warnings.catch_warnings():
        warnings.filterwarnings('error', message='kernels:.*fall back', category=RuntimeWarning)
        kernels.set_backend(kernel_backend)
        try:
            yield
        finally:
            kernels.set_backend(None)
