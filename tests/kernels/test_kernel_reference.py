"""The torch reference against naive per-step oracles, in float64."""
import pytest
import torch

from kernels import reference
from kernel_oracles import make_scan_inputs, naive_cross_scan, naive_selective_scan

F64 = torch.float64


def _exact(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('length', [1, 2, 7, 127, 128, 129, 257])
def test_linear_scan_matches_recurrence(length):
    decay = torch.rand(3, length, dtype=F64)
    inputs = torch.randn(3, length, dtype=F64)
    state, expected = torch.zeros(3, dtype=F64), []
    for t in range(length):
        state = decay[:, t] * state + inputs[:, t]
        expected.append(state)
    _exact(reference.chunked_linear_scan(decay, inputs), torch.stack(expected, -1))


# L around the default chunk (128) and around a small one, batch 1, d_state 1 and 16,
# K * D not a power of two.
SCAN_CASES = [
    # batch, K, D per group, N, L, chunk
    (2, 4, 3, 16, 127, None),
    (1, 4, 3, 16, 128, None),
    (2, 2, 5, 1, 129, None),
    (1, 3, 1, 1, 300, None),
    (2, 4, 3, 4, 7, 8),
    (1, 4, 3, 4, 8, 8),
    (1, 2, 3, 16, 9, 8),
    (2, 1, 6, 2, 65, 8),
]


@pytest.mark.parametrize('batch,groups,dims,state,length,chunk', SCAN_CASES)
def test_selective_scan_matches_naive_loop(batch, groups, dims, state, length, chunk, monkeypatch):
    if chunk:
        monkeypatch.setattr(reference, 'CHUNK_SIZE', chunk)
    inputs = make_scan_inputs(batch, groups, dims, state, length, F64)
    inputs = {name: t.double() for name, t in inputs.items()}
    _exact(reference.selective_scan(**inputs), naive_selective_scan(**inputs))


@pytest.mark.parametrize('with_d,with_bias,softplus', [(False, False, True), (True, False, False),
                                                       (False, True, False)])
def test_selective_scan_optional_terms(with_d, with_bias, softplus):
    inputs = {name: t.double() for name, t in make_scan_inputs(2, 2, 3, 4, 20).items()}
    inputs['delta'] = inputs['delta'].abs()  # without softplus a negative step would grow the state
    inputs['D'] = inputs['D'] if with_d else None
    inputs['delta_bias'] = inputs['delta_bias'].abs() if with_bias else None
    _exact(reference.selective_scan(**inputs, delta_softplus=softplus),
           naive_selective_scan(**inputs, delta_softplus=softplus))


@pytest.mark.parametrize('delta_shift', [-8.0, 6.0])
def test_selective_scan_extreme_steps(delta_shift, monkeypatch):
    # Large steps make whole chunks decay to exactly zero; the scan must stay finite.
    monkeypatch.setattr(reference, 'CHUNK_SIZE', 8)
    inputs = make_scan_inputs(1, 2, 3, 16, 40, F64, delta_shift=delta_shift)
    inputs = {name: t.double() for name, t in inputs.items()}
    inputs['A'] = inputs['A'] * 50
    _exact(reference.selective_scan(**inputs), naive_selective_scan(**inputs))


@pytest.mark.parametrize('batch,groups,dims,state,length,chunk', SCAN_CASES[2:6])
def test_selective_scan_backward_matches_naive_autograd(batch, groups, dims, state, length, chunk, monkeypatch):
    if chunk:
        monkeypatch.setattr(reference, 'CHUNK_SIZE', chunk)
    inputs = {name: t.double().requires_grad_() for name, t in
              make_scan_inputs(batch, groups, dims, state, length, F64).items()}
    grad_out = torch.randn(batch, groups * dims, length, dtype=F64)
    expected = torch.autograd.grad(naive_selective_scan(**inputs), list(inputs.values()), grad_out)
    actual = reference.selective_scan_backward(grad_out, **{k: v.detach() for k, v in inputs.items()})
    for name, got, want in zip(inputs, actual, expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9, msg=lambda m, name=name: f'd{name}: {m}')


def test_selective_scan_gradcheck(monkeypatch):
    monkeypatch.setattr(reference, 'CHUNK_SIZE', 4)
    inputs = {name: t.double().requires_grad_() for name, t in make_scan_inputs(1, 2, 1, 2, 9, F64).items()}
    assert torch.autograd.gradcheck(lambda *args: reference.selective_scan(*args), tuple(inputs.values()))


@pytest.mark.parametrize('height,width', [(7, 7), (1, 9), (5, 8), (4, 1)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_cross_scan_matches_index_arithmetic(height, width, channels_last):
    x = torch.randn(2, 3, height, width, dtype=F64)
    layout = x.permute(0, 2, 3, 1).contiguous() if channels_last else x
    assert torch.equal(reference.cross_scan(layout, channels_last), naive_cross_scan(x))


@pytest.mark.parametrize('height,width', [(7, 7), (1, 9), (6, 5)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_cross_merge_is_adjoint_of_cross_scan(height, width, channels_last):
    shape = (2, height, width, 3) if channels_last else (2, 3, height, width)
    x = torch.randn(shape, dtype=F64)
    y = torch.randn(2, 4, 3, height * width, dtype=F64)
    lhs = (reference.cross_scan(x, channels_last) * y).sum()
    rhs = (x * reference.cross_merge(y, height, width, channels_last)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)
