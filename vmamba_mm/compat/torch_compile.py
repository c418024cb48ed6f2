"""torch.compile settings under which VMamba compiles to a fast graph (docs/perf_notes.md, change 7).

- Inductor's layout optimization off. It is on whenever a graph has convolutions, and then gives every 4-D
  tensor upstream of one the strides ``channels_last`` gives an (N, C, H, W) tensor. VMamba's activations
  are (B, H, W, C) already, so they were stored in (B, W, C, H) order and each LayerNorm read its rows with a
  stride of H.
- The partitioner's activation memory budget at 0.7: it recomputes cheap elementwise results in the backward
  instead of keeping them: 37-40% less peak training memory for about 3% of the speed (VMamba-T/S/B, H100).

The settings are patched for the duration of a ``with`` block, and inductor compiles on a model's first call,
so the block has to hold the first forward (and backward) of the compiled model, not the torch.compile call.
"""
import contextlib

ACTIVATION_MEMORY_BUDGET = 0.7


@contextlib.contextmanager
def vmamba_compile_settings():
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    with inductor_config.patch(layout_optimization=False), \
            functorch_config.patch(activation_memory_budget=ACTIVATION_MEMORY_BUDGET):
        yield


def compile_settings_for(model):
    """`vmamba_compile_settings()` when ``model`` holds a VMamba backbone; torch's defaults otherwise."""
    from ..models import VMamba
    if any(isinstance(module, VMamba) for module in model.modules()):
        return vmamba_compile_settings()
    return contextlib.nullcontext()
