"""Mixed precision on machines without an accelerator.

mmengine's `AmpOptimWrapper` refuses to start without CUDA/NPU/MLU/MUSA. On a CPU, autocast runs in
bfloat16, whose exponent range equals float32's, so no loss scaling is needed and a plain optimizer
step under `torch.autocast('cpu')` is the whole of it.
"""
import contextlib

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """`OptimWrapper` whose forward/loss context runs under CPU autocast (bfloat16 by default)."""

    def __init__(self, dtype='bfloat16', **kwargs):
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

    @contextlib.contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
