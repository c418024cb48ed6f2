"""kernels.layer_norm against float64 F.layer_norm; the triton backend runs under the interpreter.

Tiles are shrunk so that several row tiles, and several tiles per backward program (the last one partly
past the last row), occur at these sizes. Buffers from torch.empty are poisoned with NaN, so an output or
a partial-gradient row that a kernel never writes fails the test.
"""
import pytest
import torch
import torch.nn.functional as F

import kernels
from kernels import ops, triton_layer_norm
from kernel_oracles import nan_filled

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
TOLERANCE = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.bfloat16: dict(rtol=2e-2, atol=2e-2),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
}
# Leading shape and C: C not a power of two (96, 40, 7) and 1; row counts odd, below and above a tile.
SHAPES = [((37, ), 7), ((3, 5), 40), ((2, 3), 96), ((5, ), 1)]


@pytest.fixture(autouse=True)
def poisoned_small_tiles(monkeypatch):
    monkeypatch.setattr(torch, 'empty', nan_filled(torch.empty))
    monkeypatch.setattr(triton_layer_norm, 'FWD_TILE', 64)
    monkeypatch.setattr(triton_layer_norm, 'BWD_TILE', 64)
    monkeypatch.setattr(triton_layer_norm, 'BWD_PROGRAMS_PER_SM', 2)


def make_inputs(leading, channels, dtype, param_dtype=torch.float32, weight=True, bias=True):
    x = (torch.randn(*leading, channels) * 3 + 1).to(dtype)
    w = (torch.randn(channels) + 1).to(param_dtype) if weight else None
    b = torch.randn(channels).to(param_dtype) if bias else None
    return x, w, b


def run_with_grads(fn, x, weight, bias, grad_seed):
    """fn's output and the gradients of x, weight and bias (None where absent) for a fixed random grad."""
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    out = fn(*leaves)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed)).to(out.dtype)
    out.backward(grad)
    return out, grad, [None if t is None else t.grad for t in leaves]


def float64_oracle(x, weight, bias, grad):
    leaves = [None if t is None else t.detach().double().requires_grad_() for t in (x, weight, bias)]
    out = F.layer_norm(leaves[0], x.shape[-1:], leaves[1], leaves[2])
    out.backward(grad.double())
    return out, [None if t is None else t.grad for t in leaves]


def check_against_float64(backend, x, weight, bias):
    out, grad, grads = run_with_grads(lambda *a: kernels.layer_norm(*a, backend=backend), x, weight, bias, 0)
    expected, expected_grads = float64_oracle(x, weight, bias, grad)
    assert out.dtype == x.dtype and out.shape == x.shape
    torch.testing.assert_close(out.double(), expected, **TOLERANCE[out.dtype])
    for actual, reference, leaf in zip(grads, expected_grads, (x, weight, bias)):
        if leaf is None:
            assert actual is None
            continue
        assert actual.dtype == leaf.dtype
        torch.testing.assert_close(actual.double(), reference, **TOLERANCE[actual.dtype])


@pytest.mark.parametrize('leading,channels', SHAPES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_triton_matches_float64(leading, channels, dtype):
    check_against_float64('triton', *make_inputs(leading, channels, dtype))


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_triton_with_parameters_in_the_input_dtype(dtype):
    check_against_float64('triton', *make_inputs((4, 3), 40, dtype, param_dtype=dtype))


@pytest.mark.parametrize('weight,bias', [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_triton_without_weight_or_bias(weight, bias, dtype):
    check_against_float64('triton', *make_inputs((9, ), 40, dtype, weight=weight, bias=bias))


def test_triton_float64_passes_gradcheck():
    x, weight, bias = make_inputs((3, ), 5, torch.float64, param_dtype=torch.float64)
    inputs = tuple(t.requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradcheck(lambda *a: kernels.layer_norm(*a, backend='triton'), inputs)


@pytest.mark.parametrize('shape', [(6, ), (2, 0, 7)])
def test_triton_one_row_and_no_rows(shape):
    x, weight, bias = make_inputs(shape[:-1], shape[-1], torch.float32)
    check_against_float64('triton', x, weight, bias)


def test_triton_reads_non_contiguous_input():
    x, weight, bias = make_inputs((2, 40, 3), 5, torch.float32)
    check_against_float64('triton', x.transpose(1, 2), weight, bias)


@pytest.mark.parametrize('dtype', DTYPES)
def test_torch_backend_is_f_layer_norm(dtype):
    x, weight, bias = make_inputs((3, 5), 40, dtype)
    assert torch.equal(kernels.layer_norm(x, weight, bias, 1e-3, backend='torch'),
                       F.layer_norm(x, (40, ), weight, bias, 1e-3))
    assert kernels.get_backend() == 'torch'


# ---------------------------------------------------------------- autocast
@pytest.mark.parametrize('backend', ['torch', 'triton'])
@pytest.mark.parametrize('x_dtype', [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize('autocast_dtype', [torch.bfloat16, torch.float16])
def test_output_dtype_under_cpu_autocast_is_f_layer_norms(backend, x_dtype, autocast_dtype):
    x, weight, bias = make_inputs((4, ), 40, x_dtype)
    with torch.autocast('cpu', dtype=autocast_dtype):
        out = kernels.layer_norm(x, weight, bias, backend=backend)
        expected = F.layer_norm(x, (40, ), weight, bias)
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected, **TOLERANCE[out.dtype])


def test_fp32_autocast_rule_gives_fp32_from_half_input(monkeypatch):
    """CUDA's rule (layer_norm on autocast's fp32 list), applied to CPU autocast: the kernel reads the bf16 x
    itself and writes fp32; the gradients keep their leaves' dtypes."""
    monkeypatch.setattr(ops, '_AUTOCAST_FP32_LAYER_NORM_DEVICES', ('cpu', ))
    x, weight, bias = make_inputs((5, ), 40, torch.bfloat16)

    def autocast_layer_norm(*args):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            return kernels.layer_norm(*args, backend='triton')

    out, grad, grads = run_with_grads(autocast_layer_norm, x, weight, bias, 0)
    assert out.dtype == torch.float32
    assert [g.dtype for g in grads] == [torch.bfloat16, torch.float32, torch.float32]
    expected, expected_grads = float64_oracle(x, weight, bias, grad)
    torch.testing.assert_close(out.double(), expected, **TOLERANCE[torch.float32])
    torch.testing.assert_close(grads[1].double(), expected_grads[1], **TOLERANCE[torch.float32])


# ---------------------------------------------------------------- torch.library and torch.compile
def test_custom_ops_pass_opcheck():
    x, weight, bias = make_inputs((3, 4), 7, torch.float32)
    for args in [(x, weight, bias, 1e-5, torch.float32), (x.bfloat16(), None, bias, 1e-5, torch.float32),
                 (x, None, None, 0.1, torch.float32)]:
        args = tuple(a.clone().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
        torch.library.opcheck(torch.ops.vmamba_kernels.layer_norm, args)
    grad = torch.randn(x.shape)  # the backward op has no backward of its own: inputs without grad
    torch.library.opcheck(torch.ops.vmamba_kernels.layer_norm_backward, (grad, x, weight, bias, 1e-5))
    torch.library.opcheck(torch.ops.vmamba_kernels.layer_norm_backward, (grad, x, None, None, 1e-5))


def _norm_twice(x, weight, bias, backend):
    return kernels.layer_norm(kernels.layer_norm(x, weight, bias, backend=backend) * 2, weight, None,
                              backend=backend).square().mean()


@pytest.mark.parametrize('backend', ['torch', 'triton'])
def test_torch_compile_fullgraph(backend):
    torch._dynamo.reset()
    x, weight, bias = make_inputs((3, 5), 40, torch.float32)
    compiled = torch.compile(_norm_twice, fullgraph=True, backend='aot_eager')
    eager, _, eager_grads = run_with_grads(lambda *a: _norm_twice(*a, backend), x, weight, bias, 0)
    out, _, grads = run_with_grads(lambda *a: compiled(*a, backend), x, weight, bias, 0)
    torch.testing.assert_close(out, eager)
    for actual, expected in zip(grads, eager_grads):
        torch.testing.assert_close(actual, expected)


def test_torch_compile_fullgraph_under_autocast():
    torch._dynamo.reset()
    x, weight, bias = make_inputs((3, 5), 40, torch.bfloat16)

    def autocast_norm(x, weight, bias):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            return kernels.layer_norm(x, weight, bias, backend='triton')

    out = torch.compile(autocast_norm, fullgraph=True, backend='aot_eager')(x, weight, bias)
    torch.testing.assert_close(out, autocast_norm(x, weight, bias))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize('kwargs,error,message', [
    (dict(x=torch.randn(2, 7), weight=torch.randn(6)), ValueError,
     r'weight must have shape \(C,\) = \(7,\), got \(6,\)'),
    (dict(x=torch.randn(2, 7), bias=torch.randn(1, 7)), ValueError,
     r'bias must have shape \(C,\) = \(7,\), got \(1, 7\)'),
    (dict(x=torch.tensor(1.0)), ValueError, r'x must have shape \(\.\.\., C\) with C >= 1.*got \(\)'),
    (dict(x=torch.randn(3, 0)), ValueError, r'x must have shape \(\.\.\., C\).*got \(3, 0\)'),
    (dict(x=torch.ones(2, 7, dtype=torch.int64)), TypeError, 'x must be a floating-point tensor'),
    (dict(x=torch.randn(2, 7), weight=torch.ones(7, dtype=torch.int64)), TypeError, 'weight must be a floating-point'),
    (dict(x=[1.0, 2.0]), TypeError, 'x must be a torch.Tensor, got list'),
    (dict(x=torch.randn(2, 7), eps=-1e-5), ValueError, 'eps must be a non-negative number, got -1e-05'),
    (dict(x=torch.randn(2, 7), weight=torch.randn(7, device='meta')), ValueError,
     'all tensors must be on one device, got x on cpu, weight on meta'),
])
@pytest.mark.parametrize('backend', ['torch', 'triton'])
def test_bad_input_is_named(kwargs, error, message, backend):
    with pytest.raises(error, match=f'layer_norm: {message}'):
        kernels.layer_norm(**kwargs, backend=backend)


def test_rows_too_wide_for_triton_name_the_way_out(monkeypatch):
    monkeypatch.setattr(triton_layer_norm, 'MAX_COLUMNS', 8)
    with pytest.raises(ValueError, match=r"at most 8 elements, got C = 9; pass backend='torch'"):
        kernels.layer_norm(torch.randn(2, 9), backend='triton')
    kernels.layer_norm(torch.randn(2, 9), backend='torch')
