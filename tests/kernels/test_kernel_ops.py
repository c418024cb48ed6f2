"""Public ops per backend against the float64 torch backend, with mamba-ssm's tolerances.

The float64 torch backend is itself checked against naive loops in
test_kernel_reference.py. Triton runs under the interpreter here, so it gets
tiny shapes; its kernels' chunk sizes are shrunk so chunk carries still happen.
"""
import warnings

import pytest
import torch

import kernels
from kernel_oracles import check_selective_scan, check_ss2d, grads_of, make_scan_inputs, make_ss2d_inputs

DTYPES = [torch.float32, torch.bfloat16, torch.float16]

# (batch, K, D per group, N, L): batch 1, d_state 1 and 16, K * D not a power of two,
# L just below / at / above the torch chunk (128).
TORCH_SCAN_SHAPES = [(2, 4, 3, 16, 127), (1, 4, 3, 1, 128), (2, 2, 5, 16, 129), (1, 3, 2, 4, 300)]
# (batch, D, H, W, R, N): odd and non-square maps, a 1 x L strip.
TORCH_SS2D_SHAPES = [(1, 3, 57, 58, 2, 1), (2, 6, 7, 7, 3, 16), (2, 5, 1, 130, 2, 4)]


@pytest.mark.parametrize('shape', TORCH_SCAN_SHAPES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_torch_selective_scan_matches_float64(shape, dtype):
    check_selective_scan('torch', dtype, shape)


def test_torch_selective_scan_input_dtype_output():
    check_selective_scan('torch', torch.bfloat16, (2, 2, 3, 4, 50), out_fp32=False)


@pytest.mark.parametrize('shape', TORCH_SS2D_SHAPES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('channels_last', [False, True])
def test_torch_ss2d_matches_float64(shape, dtype, channels_last):
    check_ss2d('torch', dtype, shape, channels_last)


def test_ss2d_is_the_composition_of_the_ops():
    inputs = make_ss2d_inputs(2, 4, 5, 6, 2, 3, torch.float64)
    x, rank, state = inputs['x'], 2, 3
    xs = kernels.cross_scan(x)
    x_dbl = torch.einsum('kcd,bkdl->bkcl', inputs['x_proj_weight'].double(), xs)
    dts, B, C = x_dbl.split([rank, state, state], dim=2)
    delta = torch.einsum('kdr,bkrl->bkdl', inputs['dt_proj_weight'].double(), dts)
    y = kernels.selective_scan(xs.flatten(1, 2), delta.flatten(1, 2), inputs['A'].double(), B.contiguous(),
                               C.contiguous(), inputs['D'].double(), inputs['dt_proj_bias'].double().flatten())
    expected = kernels.cross_merge(y.unflatten(1, (4, -1)), 5, 6)
    torch.testing.assert_close(kernels.ss2d(**{k: v.double() for k, v in inputs.items()}), expected)


@pytest.mark.parametrize('channels_last', [False, True])
def test_ops_gradcheck_float64(channels_last):
    """The hand-written backward of each op against finite differences."""
    shape = (1, 2, 3, 2) if channels_last else (1, 2, 2, 3)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: kernels.cross_scan(t, channels_last), (x,))
    y = torch.randn(1, 4, 2, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: kernels.cross_merge(t, 2, 3, channels_last), (y,))
    ss2d_inputs = make_ss2d_inputs(1, 2, 2, 3, 1, 2, torch.float64, channels_last=channels_last)
    ss2d_inputs = tuple(t.double().requires_grad_() for t in ss2d_inputs.values())
    assert torch.autograd.gradcheck(lambda *a: kernels.ss2d(*a, channels_last=channels_last), ss2d_inputs)


def test_selective_scan_op_gradcheck_without_optional_terms():
    inputs = make_scan_inputs(1, 2, 1, 2, 6, torch.float64)
    args = tuple(inputs[k].double().requires_grad_() for k in ('u', 'delta', 'A', 'B', 'C'))
    assert torch.autograd.gradcheck(lambda *a: kernels.selective_scan(*a, delta_softplus=False), args)
    args = tuple(inputs[k].double().requires_grad_() for k in ('u', 'delta', 'A', 'B', 'C', 'D', 'delta_bias'))
    assert torch.autograd.gradcheck(lambda *a: kernels.selective_scan(*a), args)


def _all_ops(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D):
    height, width = x.shape[2:]
    merged = kernels.cross_merge(kernels.cross_scan(x) * 2, height, width)
    return kernels.ss2d(merged, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D).square().mean()


@pytest.mark.parametrize('compiler', ['aot_eager', pytest.param('inductor', marks=pytest.mark.slow)])
def test_torch_compile_fullgraph(compiler):
    torch._dynamo.reset()
    inputs = make_ss2d_inputs(2, 4, 5, 6, 2, 3)
    eager_loss, eager_grads = grads_of(_all_ops, inputs, torch.tensor(1.0))
    compiled = torch.compile(_all_ops, fullgraph=True, backend=compiler)
    loss, grads = grads_of(compiled, inputs, torch.tensor(1.0))
    torch.testing.assert_close(loss, eager_loss)
    for name in grads:
        torch.testing.assert_close(grads[name], eager_grads[name], rtol=1e-4, atol=1e-5)


def test_custom_ops_pass_opcheck():
    """torch.library's own consistency checks: schema, fake impls, autograd registration."""
    scan = make_scan_inputs(1, 2, 2, 3, 9)
    ss2d_inputs = make_ss2d_inputs(1, 2, 3, 4, 1, 2)
    x = ss2d_inputs['x']
    for op, args in [
        (torch.ops.vmamba_kernels.cross_scan, (x, False, 'torch')),
        (torch.ops.vmamba_kernels.cross_merge, (kernels.cross_scan(x), 3, 4, False, 'torch')),
        (torch.ops.vmamba_kernels.selective_scan, (*scan.values(), True, True, 'torch')),
        (torch.ops.vmamba_kernels.ss2d, (*ss2d_inputs.values(), False, True, 'torch')),
    ]:
        args = tuple(a.requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
        torch.library.opcheck(op, args)


# ---------------------------------------------------------------- bad input
def test_unknown_backend_lists_valid_ones():
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"unknown kernel backend 'cuda'.*torch, triton"):
        kernels.cross_scan(x, backend='cuda')
    with pytest.raises(ValueError, match='valid backends'):
        kernels.set_backend('oflex')


def test_triton_on_cpu_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    with pytest.raises(kernels.BackendUnavailableError, match='needs CUDA tensors.*TRITON_INTERPRET'):
        kernels.cross_scan(torch.randn(1, 2, 3, 3), backend='triton')


def test_backend_selection_order(monkeypatch):
    monkeypatch.setattr(kernels.dispatch, '_TRITON_IMPORTABLE', True)
    assert kernels.get_backend() == 'torch'
    assert kernels.get_backend('cuda') == 'triton'
    kernels.set_backend('torch')
    assert kernels.get_backend('cuda') == 'torch'
    kernels.set_backend('auto')
    assert kernels.get_backend('cuda') == 'triton'
    assert kernels.available_backends() == ('torch', 'triton')


def test_cuda_fallback_warns_once(monkeypatch):
    monkeypatch.setattr(kernels.dispatch, '_TRITON_IMPORTABLE', False)
    monkeypatch.setattr(kernels.dispatch, '_warned_cuda_fallback', False)
    with pytest.warns(RuntimeWarning, match="fall back to the much slower 'torch' backend"):
        assert kernels.get_backend('cuda') == 'torch'
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter('always')
        assert kernels.get_backend('cuda') == 'torch'
    assert records == []
    with pytest.raises(kernels.BackendUnavailableError, match='not importable'):
        kernels.set_backend('triton')


def _scan_args(**overrides):
    inputs = make_scan_inputs(2, 2, 3, 4, 10)
    inputs.update(overrides)
    return inputs


@pytest.mark.parametrize('name,bad,message', [
    ('u', torch.randn(2, 6), r'u must have shape \(batch, K \* D, L\)'),
    ('delta', torch.randn(2, 6, 11), r'delta must have shape u.shape'),
    ('A', torch.randn(5, 4), r'A must have shape \(K \* D = 6, N\)'),
    ('B', torch.randn(2, 4, 4, 10), r'B must have shape .*K dividing 6'),
    ('B', torch.randn(2, 2, 3, 10), r'B must have shape .*N = 4'),
    ('C', torch.randn(2, 2, 4, 9), r'C must have shape B.shape'),
    ('D', torch.randn(5), r'D must have shape'),
    ('delta_bias', torch.randn(6, 1), r'delta_bias must have shape'),
])
def test_selective_scan_rejects_bad_shapes(name, bad, message):
    with pytest.raises(ValueError, match=f'selective_scan: {message}'):
        kernels.selective_scan(**_scan_args(**{name: bad}))


def test_selective_scan_rejects_integer_input():
    with pytest.raises(TypeError, match='u must be a floating-point tensor'):
        kernels.selective_scan(**_scan_args(u=torch.ones(2, 6, 10, dtype=torch.int64)))


@pytest.mark.parametrize('name,bad,message', [
    ('x', torch.randn(2, 4, 5), r'x must have shape \(B, D, H, W\)'),
    ('x_proj_weight', torch.randn(4, 7, 4), r'x_proj_weight must have shape \(4, R \+ 2N, D\) = \(4, 8, 4\)'),
    ('dt_proj_weight', torch.randn(3, 4, 2), r'dt_proj_weight must have shape \(4, D = 4, R\)'),
    ('dt_proj_bias', torch.randn(4 * 4), r'dt_proj_bias must have shape \(4, D\)'),
    ('A', torch.randn(12, 3), r'A must have shape \(4 \* D = 16, N\)'),
    ('D', torch.randn(4), r'D must have shape \(4 \* D,\)'),
])
def test_ss2d_rejects_bad_shapes(name, bad, message):
    inputs = make_ss2d_inputs(2, 4, 5, 6, 2, 3)
    inputs[name] = bad
    with pytest.raises(ValueError, match=f'ss2d: {message}'):
        kernels.ss2d(**inputs)


def test_cross_ops_reject_bad_shapes():
    with pytest.raises(ValueError, match=r'cross_scan: x must have shape \(B, H, W, D\)'):
        kernels.cross_scan(torch.randn(2, 3, 4), channels_last=True)
    with pytest.raises(ValueError, match=r'cross_merge: y must have shape \(B, 4, D, height \* width = 12\)'):
        kernels.cross_merge(torch.randn(1, 4, 2, 13), 3, 4)
    with pytest.raises(ValueError, match='one device'):
        kernels.selective_scan(**_scan_args(A=torch.randn(6, 4, device='meta')))


def test_scans_without_state_are_rejected():
    with pytest.raises(ValueError, match=r'selective_scan: A must have a state size N >= 1 .*got \(6, 0\)'):
        kernels.selective_scan(**_scan_args(A=torch.randn(6, 0), B=torch.randn(2, 2, 0, 10),
                                            C=torch.randn(2, 2, 0, 10)))
    inputs = make_ss2d_inputs(2, 4, 5, 6, 2, 3)
    inputs.update(A=torch.randn(16, 0), x_proj_weight=torch.randn(4, 2, 4))
    with pytest.raises(ValueError, match=r'ss2d: A must have a state size N >= 1 .*got \(16, 0\)'):
        kernels.ss2d(**inputs)


def test_cross_merge_rejects_negative_sizes():
    with pytest.raises(ValueError, match='cross_merge: height and width must be non-negative, got -1x0'):
        kernels.cross_merge(torch.randn(1, 4, 2, 0), -1, 0)
