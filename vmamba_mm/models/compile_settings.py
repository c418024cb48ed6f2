"""torch.compile settings under which VMamba compiles to a fast graph.

- Inductor's layout optimization off. It is on whenever a graph has convolutions, and then gives every 4-D
  tensor upstream of one the strides ``channels_last`` gives an (N, C, H, W) tensor. VMamba's activations
  are (B, H, W, C) already, so they would be stored in (B, W, C, H) order and each LayerNorm would read its
  rows with a stride of H.
- The partitioner's activation memory budget below 1: it recomputes cheap elementwise results in the
  backward instead of keeping them, for much less peak training memory at a small cost in speed
  (docs/performance.md has the trade measured).

The settings are patched for the duration of a ``with`` block. Inductor compiles on a model's first call (and
again on each recompile, for a new shape or mode), not at the torch.compile call, so the block has to hold the
calls: vmamba_mm's runner runs its whole train, val or test loop inside it.
"""
import contextlib
import importlib

from .backbones import VMamba

# {config module: {setting: value}}; the benchmark records them beside its numbers.
SETTINGS = {
    'torch._inductor.config': {'layout_optimization': False},
    'torch._functorch.config': {'activation_memory_budget': 0.7},
}


@contextlib.contextmanager
def vmamba_compile_settings():
    """`SETTINGS` patched in for the duration of the ``with`` block."""
    with contextlib.ExitStack() as stack:
        for module, settings in SETTINGS.items():
            stack.enter_context(importlib.import_module(module).patch(settings))
        yield


def compile_settings_for(model):
    """`vmamba_compile_settings()` when ``model`` holds a VMamba backbone; torch's defaults otherwise."""
    if any(isinstance(module, VMamba) for module in model.modules()):
        return vmamba_compile_settings()
    return contextlib.nullcontext()
