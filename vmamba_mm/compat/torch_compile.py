"""torch.compile settings under which VMamba compiles to a fast graph (docs/perf_notes.md, change 7).

- Inductor's layout optimization off. It is on whenever a graph has convolutions, and then gives every 4-D
  tensor upstream of one the strides ``channels_last`` gives an (N, C, H, W) tensor. VMamba's activations
  are (B, H, W, C) already, so they were stored in (B, W, C, H) order and each LayerNorm read its rows with a
  stride of H.
- The partitioner's activation memory budget at 0.7: it recomputes cheap elementwise results in the backward
  instead of keeping them: 37-40% less peak training memory for about 3% of the speed (VMamba-T/S/B, H100).

The settings are patched for the duration of a ``with`` block. Inductor compiles on a model's first call (and
again on each recompile, for a new shape or mode), not at the torch.compile call, so the block has to hold the
calls: the tools run the whole train or test loop inside it.

A config's ``compile`` (True, or a dict of torch.compile's arguments) is honoured by compiling the model's
forward: mmengine 0.10.7 compiles ``model.train_step``, the optimizer step included, and dynamo fails inside
torch's AdamW step (InternalTorchDynamoError; torch 2.14, CPU). The forward is the part worth compiling: the
loss and, through AOTAutograd, the backward come with it.
"""
import contextlib

# {config module: {setting: value}}; the benchmark records them beside its numbers.
SETTINGS = {
    'torch._inductor.config': {'layout_optimization': False},
    'torch._functorch.config': {'activation_memory_budget': 0.7},
}


@contextlib.contextmanager
def vmamba_compile_settings():
    """`SETTINGS` patched in for the duration of the ``with`` block."""
    import importlib
    with contextlib.ExitStack() as stack:
        for module, settings in SETTINGS.items():
            stack.enter_context(importlib.import_module(module).patch(settings))
        yield


def compile_options_of(cfg):
    """torch.compile's keyword arguments from a config's ``compile``, or None when it asks for no compile.
    The config keeps its ``compile`` (it is the run's record); hand mmengine's Runner ``None`` in its place."""
    options = cfg.get('compile')
    if options is None or options is False:
        return None
    if options is True:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f'compile must be True, False or a dict of torch.compile arguments, got {options!r}')
    return dict(options)


def compile_forward(model, options):
    """Compiles the forward of ``model`` (of the model inside a DDP-style wrapper) with ``options``."""
    import torch
    from mmengine.model import is_model_wrapper
    module = model.module if is_model_wrapper(model) else model
    module.forward = torch.compile(module.forward, **options)


def compile_settings_for(model):
    """`vmamba_compile_settings()` when ``model`` holds a VMamba backbone; torch's defaults otherwise."""
    from ..models import VMamba
    if any(isinstance(module, VMamba) for module in model.modules()):
        return vmamba_compile_settings()
    return contextlib.nullcontext()
