"""Optimizer wrappers and their constructor for vmamba_mm's configs.

- :class:`CPUAutocastOptimWrapper`: mixed precision on machines without an accelerator. mmengine's
  ``AmpOptimWrapper`` refuses to start without CUDA/NPU/MLU/MUSA. On a CPU, autocast runs in bfloat16, whose
  exponent range equals float32's, so no loss scaling is needed and a plain optimizer step under
  ``torch.autocast('cpu')`` is the whole of it.
- :class:`MergedGroupsOptimWrapperConstructor`: mmengine's default constructor with one parameter group per
  distinct setting. With a ``paramwise_cfg`` mmengine gives every parameter a group of its own, and an optimizer
  steps group by group in Python: for a VMamba, hundreds of groups cost more time than the update itself.
"""
import contextlib

import torch
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS


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


def merge_param_groups(groups):
    """``groups`` (optimizer parameter groups) with those of equal settings joined, in order of first appearance.

    Every parameter keeps its settings, so an optimizer steps exactly as over the separate groups."""
    merged = {}
    for group in groups:
        settings = {key: value for key, value in group.items() if key != 'params'}
        key = tuple(sorted((name, repr(value)) for name, value in settings.items()))
        if key not in merged:
            merged[key] = dict(settings, params=[])
        merged[key]['params'].extend(group['params'])
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MergedGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's ``DefaultOptimWrapperConstructor`` (same config, same per-parameter settings) whose optimizer has
    one parameter group per distinct setting (:func:`merge_param_groups`)."""

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        if prefix:  # mmengine's recursion into the submodules
            return super().add_params(params, module, prefix, is_dcn_module)
        groups = []
        super().add_params(groups, module, prefix, is_dcn_module)
        params.extend(merge_param_groups(groups))
