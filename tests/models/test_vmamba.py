import math

import pytest
import torch
import torch.nn as nn

import kernels
from vmamba_mm.models import VMamba
from vmamba_mm.models.backbones.vmamba import SS2D, ChannelsLastConv2d, HalfSavingLayerNorm, Mlp

V2 = dict(dims=16, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=2)
VANILLA = dict(dims=16, depths=(1, 1, 2, 1), ssm_ratio=2.0, d_state=2, vanilla=True)
DESIGNS = {'v2': V2, 'vanilla': VANILLA}

# With the 1000-class head: exact where the paper's repo gives the count, else in M to 0.1.
EXACT_PARAMS = {'tiny': 30_249_064, 'small': 50_147_752, 'base': 88_557_800}
APPROX_PARAMS_M = {
    'tiny-s2l5': 30.7,
    'small-s1l20': 49.0,
    'base-s1l20': 86.6,
    'vanilla-tiny': 22.9,
    'vanilla-small': 44.4,
    'vanilla-base': 76.3,
}


def classifier_params(arch):
    # The meta device gives exact shapes without allocating the larger models.
    with torch.device('meta'):
        backbone = VMamba(arch, out_indices=(3, ))
    head = backbone.dims[-1] * 1000 + 1000
    return sum(p.numel() for p in backbone.parameters()) + head


def test_arch_zoo_is_the_issue_table():
    assert set(VMamba.arch_zoo) == set(EXACT_PARAMS) | set(APPROX_PARAMS_M)


@pytest.mark.parametrize('arch', sorted(EXACT_PARAMS))
def test_exact_param_counts(arch):
    assert classifier_params(arch) == EXACT_PARAMS[arch]


@pytest.mark.parametrize('arch', sorted(APPROX_PARAMS_M))
def test_param_counts_to_a_tenth_of_a_million(arch):
    assert round(classifier_params(arch) / 1e6, 1) == APPROX_PARAMS_M[arch]


def expected_sizes(height, width, vanilla):
    """Per-stage (H, W): a stride-4 stem, then one halving per stage."""
    if vanilla:  # 4x4 stride-4 patchify (floors), patch merging pads odd sizes
        sizes = [(height // 4, width // 4)]
    else:  # two 3x3 stride-2 pad-1 convs (ceil)
        sizes = [(math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2))]
    for _ in range(3):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    return sizes


@pytest.mark.parametrize('design', sorted(DESIGNS))
@pytest.mark.parametrize('size', [(64, 64), (200, 264), (37, 53)])
def test_stage_shapes_and_strides(design, size):
    model = VMamba(DESIGNS[design]).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert len(outs) == 4
    for i, (out, hw) in enumerate(zip(outs, expected_sizes(*size, design == 'vanilla'))):
        assert out.shape == (1, 16 * 2**i, *hw)
        # Plain NCHW memory: necks and compiled heads downstream index it directly.
        assert out.is_contiguous()
    if size == (64, 64):
        assert [64 // out.shape[-1] for out in outs] == [4, 8, 16, 32]


def test_out_indices_select_stages_and_own_norms():
    model = VMamba(V2, out_indices=(1, -1)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 128]
    assert hasattr(model, 'outnorm1') and hasattr(model, 'outnorm3')
    assert not hasattr(model, 'outnorm0') and not hasattr(model, 'outnorm2')
    with pytest.raises(ValueError, match='out_indices'):
        VMamba(V2, out_indices=(4, ))


@pytest.mark.parametrize('design', sorted(DESIGNS))
def test_outputs_are_the_normalised_stage_features(design):
    """Each output is its stage's features, before downsampling, through outnorm{i}."""
    model = VMamba(DESIGNS[design], out_indices=(0, 2)).eval()
    images = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        for i in (0, 2):
            getattr(model, f'outnorm{i}').weight.normal_()
        x = model.patch_embed(images)
        expected = []
        for i, stage in enumerate(model.stages):
            for block in stage.blocks:
                x = block(x)
            if i in (0, 2):
                norm = getattr(model, f'outnorm{i}')
                normed = nn.functional.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias)
                expected.append(normed.permute(0, 3, 1, 2))
            if stage.downsample is not None:
                x = stage.downsample(x)
        outs = model(images)
    assert len(outs) == 2
    for out, reference in zip(outs, expected):
        torch.testing.assert_close(out, reference)


@pytest.mark.parametrize('groups, stride', [(1, 2), (8, 1)])
def test_channels_last_conv_is_conv2d_on_the_nchw_view(groups, stride):
    conv = ChannelsLastConv2d(8, 8, kernel_size=3, stride=stride, padding=1, groups=groups)
    x = torch.randn(2, 7, 5, 8)
    out = conv(x)
    expected = nn.functional.conv2d(x.permute(0, 3, 1, 2).contiguous(), conv.weight, conv.bias, stride, 1, 1, groups)
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1))
    assert out.is_contiguous()  # the conv wrote channels-last memory; permuting back is free


def test_unknown_arch_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        VMamba('huge')
    for name in VMamba.arch_zoo:
        assert name in str(error.value)


@pytest.mark.parametrize('arch, words', [
    (dict(dims=16, depths=(1, 1)), ['ssm_ratio', 'd_state']),
    (dict(V2, mlp_ratio=4.0), ['mlp_ratio']),
])
def test_bad_arch_dict_names_the_keys(arch, words):
    with pytest.raises(ValueError) as error:
        VMamba(arch)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize('shape', [(3, 32, 32), (1, 4, 32, 32), (1, 3, 32, 32, 1)])
def test_bad_input_shape_is_reported(shape):
    with pytest.raises(ValueError, match=re_escape_shape(shape)):
        VMamba(V2)(torch.randn(*shape))


@pytest.mark.parametrize('kwargs, words', [
    (dict(kernel_backend='cuda'), ['cuda', 'torch', 'triton']),
    (dict(frozen_stages=5), ['frozen_stages', '4']),
])
def test_bad_options_are_reported(kwargs, words):
    with pytest.raises(ValueError) as error:
        VMamba(V2, **kwargs)
    for word in words:
        assert word in str(error.value)


def re_escape_shape(shape):
    return str(tuple(shape)).replace('(', r'\(').replace(')', r'\)')


def drop_path_rates(model):
    return [getattr(block.drop_path, 'p', 0.0) for stage in model.stages for block in stage.blocks]


def test_drop_path_rises_linearly_over_all_blocks():
    model = VMamba(V2, drop_path_rate=0.3)
    torch.testing.assert_close(torch.tensor(drop_path_rates(model)), torch.linspace(0, 0.3, 5))
    assert VMamba('tiny', drop_path_rate=0.0).stages[3].blocks[1].drop_path.__class__ is nn.Identity
    with torch.device('meta'):
        assert VMamba('base', drop_path_rate=0.6).stages[3].blocks[1].drop_path.p == pytest.approx(0.6)


@pytest.mark.parametrize('arch', ['base', 'vanilla-base', V2])
def test_drop_path_is_off_unless_asked_for(arch):
    """The arch holds structure only: without drop_path_rate no block drops paths, whatever the size."""
    with torch.device('meta'):
        model = VMamba(arch)
    assert set(drop_path_rates(model)) == {0.0}
    assert all(set(settings) <= VMamba.required_arch_keys | VMamba.optional_arch_keys
               for settings in VMamba.arch_zoo.values())


def test_drop_path_rate_in_the_arch_dict_is_refused_and_placed():
    with pytest.raises(ValueError, match=r"arch dict holds \['drop_path_rate'\].*model\.backbone\.drop_path_rate"):
        VMamba(dict(V2, drop_path_rate=0.3))
    with pytest.raises(ValueError, match=r'drop_path_rate=1\.0: expected a rate in \[0, 1\)'):
        VMamba(V2, drop_path_rate=1.0)


def test_official_initialisation():
    torch.manual_seed(0)
    ssm = SS2D(embed_dims=96, ssm_ratio=2.0, d_state=16)
    inner, rank = 192, 6
    assert ssm.x_proj_weight.shape == (4, rank + 32, inner)
    assert ssm.x_proj_weight.abs().max() <= inner**-0.5
    assert ssm.x_proj_weight.abs().max() > 0.9 * inner**-0.5  # uniform, not a narrower law
    assert ssm.dt_proj_weight.abs().max() <= rank**-0.5
    dt = nn.functional.softplus(ssm.dt_proj_bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    assert dt.log().std() > 0.5 * (math.log(100) / math.sqrt(12))  # log-uniform spread over [1e-3, 0.1]
    torch.testing.assert_close(ssm.A_log, torch.arange(1, 17.).log().expand(4 * inner, 16))
    torch.testing.assert_close(ssm.skip, torch.ones(4 * inner))

    model = VMamba('tiny')
    linear_weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Linear)])
    assert abs(linear_weights.std().item() - 0.02) < 1e-3
    assert linear_weights.abs().max() <= 2.0
    assert all(not m.bias.any() for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None)


def test_ss2d_core_gets_the_half_activation_under_autocast(monkeypatch):
    """No fp32 copy before ``kernels.ss2d``: the op upcasts half input itself, and autograd keeps the half tensor."""
    seen = []
    ss2d = kernels.ss2d
    monkeypatch.setattr(kernels, 'ss2d', lambda x, *args, **kwargs: seen.append(x.dtype) or ss2d(x, *args, **kwargs))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = VMamba(V2)(torch.randn(1, 3, 32, 32))
    assert seen == [torch.bfloat16] * 5
    assert all(out.isfinite().all() for out in outs)
    seen.clear()
    VMamba(V2)(torch.randn(1, 3, 32, 32))
    assert seen == [torch.float32] * 5


TINY_V2 = dict(dims=8, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)


@pytest.mark.parametrize('arch, backend', [
    pytest.param(V2, 'torch', id='v2-torch'),
    pytest.param(VANILLA, 'torch', id='vanilla-torch'),
    pytest.param(TINY_V2, 'triton', id='v2-triton', marks=pytest.mark.slow),  # the Triton interpreter
])
def test_half_input_to_the_ss2d_core_gives_the_upcast_input_s_results(monkeypatch, arch, backend):
    """The op on the half activation against the op on its exact fp32 upcast: the same forward values; the fused
    op (triton, interpreted on a CPU) gives the same gradients too, bit for bit (it upcasts x and rounds dx to x's
    dtype once, at the end, as the upcast's backward would). The torch backend's are the same within
    bf16 rounding: it rounds the scan's part of dx to x's dtype before adding the projections' part."""
    torch.manual_seed(0)
    model = VMamba(arch, kernel_backend=backend)
    images = torch.randn(2, 3, 32, 40)
    ss2d = kernels.ss2d
    results = []
    for upcast in (True, False):
        if upcast:
            monkeypatch.setattr(kernels, 'ss2d', lambda x, *args, **kwargs: ss2d(x.float(), *args, **kwargs))
        else:
            monkeypatch.setattr(kernels, 'ss2d', ss2d)
        model.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            outs = model(images)
        sum((o.float() * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
        results.append(([o.detach() for o in outs], {n: p.grad for n, p in model.named_parameters()}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for name in grads_a:
        if backend == 'triton':
            torch.testing.assert_close(grads_a[name], grads_b[name], rtol=0, atol=0, msg=name)
        else:
            scale = grads_a[name].abs().max().clamp(min=1e-6)
            torch.testing.assert_close(grads_a[name] / scale, grads_b[name] / scale, rtol=0, atol=2e-2, msg=name)


def test_frozen_stages_stop_gradients_and_stay_in_eval():
    model = VMamba(V2, frozen_stages=2)
    model.train()
    frozen = [model.patch_embed, model.stages[0], model.stages[1], model.outnorm0, model.outnorm1]
    trainable = [model.stages[2], model.stages[3], model.outnorm2, model.outnorm3]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in trainable:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())
    sum(o.sum() for o in model(torch.randn(1, 3, 32, 32))).backward()
    assert model.stages[0].blocks[0].ssm.A_log.grad is None
    assert model.stages[2].blocks[0].ssm.A_log.grad is not None


def test_norm_eval_keeps_norms_in_eval():
    model = VMamba(V2, norm_eval=True).train()
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(not m.training for m in norms)
    assert model.stages[0].blocks[0].ssm.training


@pytest.mark.parametrize('design', sorted(DESIGNS))
def test_with_cp_gives_the_same_outputs_and_gradients(design):
    torch.manual_seed(0)
    plain = VMamba(DESIGNS[design])
    checkpointed = VMamba(DESIGNS[design], with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 40)
    results = []
    for model in (plain, checkpointed):
        outs = model(x)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)


def test_with_cp_checkpoints_every_block(monkeypatch):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def recording(function, *args, **kwargs):
        calls.append(function)
        return original(function, *args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', recording)
    model = VMamba(V2, with_cp=True)
    model(torch.randn(1, 3, 32, 32)).__getitem__(0).sum().backward()
    assert calls == [block for stage in model.stages for block in stage.blocks]


def test_kernel_backend_reaches_the_ss2d_op(monkeypatch):
    seen = []
    original = kernels.ss2d

    def recording(*args, backend=None, **kwargs):
        seen.append(backend)
        return original(*args, backend=backend, **kwargs)

    monkeypatch.setattr(kernels, 'ss2d', recording)
    VMamba(V2, kernel_backend='torch')(torch.randn(1, 3, 32, 32))
    assert seen == ['torch'] * 5
    seen.clear()
    VMamba(V2)(torch.randn(1, 3, 32, 32))
    assert seen == [None] * 5


@pytest.mark.parametrize('design', sorted(DESIGNS))
def test_gradients_reach_every_parameter(design):
    model = VMamba(DESIGNS[design], out_indices=(0, 1, 2, 3))
    sum(o.pow(2).mean() for o in model(torch.randn(2, 3, 64, 64))).backward()  # L > 1 in every stage
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    # DDP's gradient buckets are views with each parameter's strides; other strides cost a copy and a warning.
    assert {name: (p.stride(), p.grad.stride()) for name, p in model.named_parameters()
            if p.grad.stride() != p.stride()} == {}


# ------------------------------------------------------------------ Mlp: GELU recomputed in the backward
CPU_AND_CUDA = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA'))]


def plain_mlp(mlp, x):
    """The Linear-GELU-Linear that Mlp stands for, from the same parameters."""
    return mlp.fc2(nn.functional.gelu(mlp.fc1(x)))


def outputs_and_gradients(forward, mlp, x, weights, autocast_dtype):
    mlp.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        y = forward(mlp, x)
    (y.float() * weights).sum().backward()
    return [y.detach(), x.grad] + [p.grad for p in mlp.parameters()]


@pytest.mark.parametrize('device', CPU_AND_CUDA)
@pytest.mark.parametrize('autocast_dtype', [None, torch.bfloat16])
def test_mlp_matches_linear_gelu_linear_forward_and_backward(device, autocast_dtype):
    torch.manual_seed(0)
    mlp = Mlp(24, 96).to(device)
    for bias in (mlp.fc1.bias, mlp.fc2.bias):  # zero at init: make the bias terms count
        nn.init.normal_(bias)
    x = torch.randn(2, 5, 7, 24, device=device)
    weights = torch.randn(2, 5, 7, 24, device=device)

    ours = outputs_and_gradients(Mlp.forward, mlp, x, weights, autocast_dtype)
    plain = outputs_and_gradients(plain_mlp, mlp, x, weights, autocast_dtype)

    names = ['output', 'x.grad'] + [f'{name}.grad' for name, _ in mlp.named_parameters()]
    tolerance = dict(rtol=0, atol=1e-6) if autocast_dtype is None else dict(rtol=1.6e-2, atol=1e-3)
    for name, a, b in zip(names, ours, plain):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        torch.testing.assert_close(a, b, **tolerance, msg=name)
    assert ours[0].dtype == (torch.float32 if autocast_dtype is None else autocast_dtype)
    assert all(g.dtype == torch.float32 for g in ours[2:])  # parameter gradients stay fp32 under autocast


def hidden_tensors_saved(forward, mlp, x):
    """Dtypes of the activations of hidden width autograd keeps for the backward of ``forward``."""
    saved = []
    hidden_numel = x.numel() // mlp.fc1.in_features * mlp.fc1.out_features

    def pack(tensor):
        if tensor.numel() == hidden_numel:
            saved.append(tensor.dtype)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward(mlp, x)
    return saved


def test_mlp_keeps_one_hidden_tensor_for_the_backward():
    mlp = Mlp(8, 32)
    x = torch.randn(2, 3, 4, 8, requires_grad=True)
    assert hidden_tensors_saved(plain_mlp, mlp, x) == [torch.float32] * 2  # GELU's input and its output
    assert hidden_tensors_saved(Mlp.forward, mlp, x) == [torch.float32]  # fc1's output only
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert hidden_tensors_saved(plain_mlp, mlp, x) == [torch.bfloat16] * 2
        assert hidden_tensors_saved(Mlp.forward, mlp, x) == [torch.bfloat16]


def test_mlp_without_gradients_is_the_plain_composition():
    mlp = Mlp(8, 32)
    x = torch.randn(2, 3, 4, 8)
    with torch.no_grad():
        expected = plain_mlp(mlp, x)
        torch.testing.assert_close(mlp(x), expected, rtol=0, atol=0)
    with torch.no_grad():
        assert hidden_tensors_saved(Mlp.forward, mlp, x.requires_grad_()) == []
    y = mlp(x)
    assert type(y.grad_fn).__name__ == 'GeluLinearBackward'  # the recomputing Function with gradients
    torch.testing.assert_close(y.detach(), expected, rtol=0, atol=0)


def test_mlp_keeps_its_state_dict_keys_and_says_what_it_computes():
    mlp = Mlp(8, 32)
    assert list(mlp.state_dict()) == ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    assert mlp.fc1.weight.shape == (32, 8) and mlp.fc2.weight.shape == (8, 32)
    assert 'GELU' in repr(mlp) and 'fc1' in repr(mlp) and 'fc2' in repr(mlp)
    assert list(VMamba(V2).stages[0].blocks[0].mlp.state_dict()) == list(mlp.state_dict())


def test_mlp_function_compiles_without_graph_breaks():
    torch.manual_seed(0)
    mlp = Mlp(8, 32)
    x = torch.randn(2, 3, 4, 8, requires_grad=True)
    explanation = torch._dynamo.explain(mlp)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    compiled = torch.compile(mlp, fullgraph=True, backend='aot_eager')
    eager = outputs_and_gradients(Mlp.forward, mlp, x, torch.ones(2, 3, 4, 8), None)
    with torch.autocast('cpu', enabled=False):
        result = outputs_and_gradients(lambda module, inputs: compiled(inputs), mlp, x, torch.ones(2, 3, 4, 8), None)
    for a, b in zip(result, eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ LayerNorm keeping its saved input in half
def norm_pair(channels=24, device='cpu'):
    torch.manual_seed(0)
    plain = nn.LayerNorm(channels).to(device)
    nn.init.uniform_(plain.weight, 0.5, 1.5)  # ones and zeros at init: make the affine terms count
    nn.init.normal_(plain.bias)
    ours = HalfSavingLayerNorm(channels).to(device)
    ours.load_state_dict(plain.state_dict())
    return plain, ours


def norm_outputs_and_gradients(norm, x, weights, autocast_dtype):
    norm.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        y = norm(x)
    (y.float() * weights).sum().backward()
    return [y.detach(), x.grad, norm.weight.grad, norm.bias.grad]


@pytest.mark.parametrize('device', CPU_AND_CUDA)
@pytest.mark.parametrize('autocast_dtype', [None, torch.bfloat16, torch.float16])
def test_half_saving_layer_norm_gives_layer_norm_s_outputs_and_gradients(device, autocast_dtype):
    plain, ours = norm_pair(device=device)
    x = torch.randn(2, 5, 7, 24, device=device) * 3 + 1  # off-centre, unit-less scale: mean and rstd matter
    weights = torch.randn(2, 5, 7, 24, device=device)

    expected = norm_outputs_and_gradients(plain, x, weights, autocast_dtype)
    result = norm_outputs_and_gradients(ours, x, weights, autocast_dtype)

    torch.testing.assert_close(result[0], expected[0], rtol=0, atol=0, msg='output')
    # gradients: within the rounding of the normalized input to the autocast dtype
    tolerance = dict(rtol=0, atol=0) if autocast_dtype is None else dict(rtol=2e-2, atol=2e-2)
    for name, a, b in zip(['x.grad', 'weight.grad', 'bias.grad'], result[1:], expected[1:]):
        assert a.dtype == b.dtype == torch.float32, name
        torch.testing.assert_close(a, b, **tolerance, msg=name)


def saved_dtypes(forward, x):
    """Dtypes of the tensors of x's size that autograd keeps for the backward of ``forward(x)``."""
    saved = []

    def pack(tensor):
        if tensor.numel() == x.numel():
            saved.append(tensor.dtype)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward(x)
    return saved


def test_half_saving_layer_norm_keeps_the_normalized_input_in_the_autocast_dtype():
    plain, ours = norm_pair()
    x = torch.randn(2, 3, 4, 24, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert saved_dtypes(plain, x) == [torch.float32]
        assert saved_dtypes(ours, x) == [torch.bfloat16]
    assert saved_dtypes(ours, x) == [torch.float32]  # no autocast: nn.LayerNorm's own backward


@pytest.mark.parametrize('case', ['no autocast', 'no grad', 'cpu half input'])
def test_half_saving_layer_norm_is_layer_norm_where_it_cannot_save(case):
    plain, ours = norm_pair()
    x = torch.randn(2, 3, 4, 24, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=case != 'no autocast'), \
            torch.set_grad_enabled(case != 'no grad'):
        if case == 'cpu half input':  # CPU autocast runs a bf16 LayerNorm in bf16: nothing to halve
            x = x.bfloat16()
        expected, result = plain(x), ours(x)
    assert result.dtype == expected.dtype
    torch.testing.assert_close(result, expected, rtol=0, atol=0)
    assert type(result.grad_fn) is type(expected.grad_fn)


def test_half_saving_layer_norm_with_frozen_parameters():
    _, ours = norm_pair()
    ours.requires_grad_(False)
    x = torch.randn(2, 3, 24, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ours(x).sum().backward()
    assert x.grad is not None and ours.weight.grad is None and ours.bias.grad is None


@pytest.mark.parametrize('design', DESIGNS)
def test_every_backbone_norm_is_half_saving(design):
    norms = [m for m in VMamba(DESIGNS[design]).modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(type(m) is HalfSavingLayerNorm for m in norms)


def test_half_saving_layer_norm_compiles_without_graph_breaks():
    _, ours = norm_pair()
    x = torch.randn(2, 3, 24, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        explanation = torch._dynamo.explain(ours)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
