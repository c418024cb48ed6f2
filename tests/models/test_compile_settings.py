"""torch.compile settings for VMamba: what inductor does to its (B, H, W, C) features, and where they apply."""
import contextlib
import re

import pytest
import torch
from torch._inductor.utils import run_and_get_code

from vmamba_mm.models import VMamba, compile_settings_for, vmamba_compile_settings
from vmamba_mm.models.backbones.vmamba import VSSBlock

FEATURES = (2, 4, 6, 8)  # (B, H, W, C), every size distinct


def _settings():
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    return inductor_config.layout_optimization, functorch_config.activation_memory_budget


def _feature_buffer_strides(settings):
    """Strides of every (B, H, W, C) buffer inductor allocates for a block's compiled forward and backward."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    compiled = torch.compile(VSSBlock(FEATURES[-1], 1.0, 1, kernel_backend='torch'))
    x = torch.randn(*FEATURES, requires_grad=True)

    def step():  # both graphs compile inside: the forward on the call, the backward on backward()
        with settings:
            compiled(x).sum().backward()

    _, sources = run_and_get_code(step)
    allocations = re.findall(r'empty_strided_\w+\(\(([\d, ]+)\), \(([\d, ]+)\)', '\n'.join(sources))
    return {_ints(strides) for shape, strides in allocations if _ints(shape) == FEATURES}


def _ints(text):
    return tuple(int(value) for value in text.split(',') if value.strip())


@pytest.mark.slow
def test_compiled_block_keeps_its_features_channels_last_only_under_the_settings():
    contiguous = torch.empty(FEATURES).stride()
    # Inductor's layout optimization treats (B, H, W, C) as (N, C, H, W): H becomes the innermost dim.
    assert (192, 1, 32, 4) in _feature_buffer_strides(contextlib.nullcontext())
    assert _feature_buffer_strides(vmamba_compile_settings()) == {contiguous}


def test_settings_apply_to_models_holding_a_vmamba_backbone_and_are_restored():
    defaults = _settings()
    with compile_settings_for(torch.nn.Linear(2, 2)):
        assert _settings() == defaults
    model = torch.nn.Sequential(VMamba(arch={'dims': 8, 'depths': (1, 1, 1, 1), 'ssm_ratio': 1.0, 'd_state': 1}))
    with compile_settings_for(model):
        assert _settings() == (False, 0.7)
    assert _settings() == defaults

