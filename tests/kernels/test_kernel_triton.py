"""The triton backend under the interpreter (TRITON_INTERPRET=1, see conftest.py), tiny shapes.

Output buffers are poisoned with NaN before the kernels write them, so a
position a kernel forgets to write fails the finiteness check instead of
passing with whatever memory held. Chunk and tile sizes are shrunk so that
several chunks and channel blocks occur even at these sizes.
"""
import pytest
import torch

import kernels
from kernels import reference, triton_selective_scan, triton_ss2d
from kernel_oracles import (assert_close, check_selective_scan, check_ss2d, grads_of, make_scan_inputs,
                            make_ss2d_inputs, nan_filled)

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.fixture(autouse=True)
def poisoned_small_tiles(monkeypatch):
    monkeypatch.setattr(torch, 'empty', nan_filled(torch.empty))
    monkeypatch.setattr(torch, 'empty_like', nan_filled(torch.empty_like))
    monkeypatch.setattr(triton_selective_scan, 'CHUNK_SIZE', 8)
    monkeypatch.setattr(triton_selective_scan, 'TILE_ELEMENTS', 64)


def test_poisoning_is_active():
    assert torch.isnan(torch.empty(3)).all()


@pytest.mark.parametrize('height,width,channels', [(7, 7, 3), (1, 13, 2), (9, 17, 17)])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_cross_scan_and_merge_match_reference(height, width, channels, channels_last, dtype):
    shape = (2, height, width, channels) if channels_last else (2, channels, height, width)
    x = torch.randn(shape).to(dtype)
    assert torch.equal(kernels.cross_scan(x, channels_last, backend='triton'), reference.cross_scan(x, channels_last))
    y = torch.randn(2, 4, channels, height * width).to(dtype)
    merged = kernels.cross_merge(y, height, width, channels_last, backend='triton')
    torch.testing.assert_close(merged, reference.cross_merge(y, height, width, channels_last))


def test_cross_scan_gradient_is_cross_merge():
    x = torch.randn(1, 3, 5, 6, requires_grad=True)
    grad = torch.randn(1, 4, 3, 30)
    kernels.cross_scan(x, backend='triton').backward(grad)
    torch.testing.assert_close(x.grad, reference.cross_merge(grad, 5, 6))


# (batch, K, D per group, N, L) with chunk 8: L below / at / above one and two chunks,
# d_state 1 and 16, batch 1, K * D not a power of two, several channel blocks per group.
SCAN_SHAPES = [(2, 4, 3, 1, 7), (1, 2, 3, 4, 8), (2, 3, 5, 2, 9), (1, 2, 2, 16, 17), (1, 1, 6, 1, 24)]


@pytest.mark.parametrize('shape', SCAN_SHAPES)
@pytest.mark.parametrize('dtype', DTYPES)
def test_selective_scan_matches_float64(shape, dtype):
    check_selective_scan('triton', dtype, shape)


@pytest.mark.parametrize('options', [dict(out_fp32=False), dict(without=('D', 'delta_bias')),
                                     dict(delta_softplus=False), dict(delta_shift=-8.0), dict(delta_shift=6.0)])
def test_selective_scan_options_match_float64(options):
    check_selective_scan('triton', torch.bfloat16 if 'out_fp32' in options else torch.float32,
                         (1, 2, 3, 4, 11), **options)


def test_selective_scan_chunk_carries_large_steps():
    """Decays that underflow to exactly zero inside a chunk must not poison the carry."""
    inputs = make_scan_inputs(1, 2, 2, 4, 19, torch.float32, delta_shift=6.0)
    inputs['A'] = inputs['A'] * 40
    out = kernels.selective_scan(**inputs, backend='triton')
    torch.testing.assert_close(out.double(), reference.selective_scan(**{k: v.double() for k, v in inputs.items()}),
                               rtol=6e-4, atol=2e-3)


# (batch, D, H, W, R, N)
SS2D_SHAPES = [(2, 3, 3, 5, 2, 1), (1, 5, 4, 3, 1, 16), (1, 2, 1, 9, 2, 2)]


@pytest.mark.parametrize('shape', SS2D_SHAPES)
@pytest.mark.parametrize('channels_last', [False, True])
def test_ss2d_matches_float64(shape, channels_last):
    check_ss2d('triton', torch.float32, shape, channels_last)


def test_ss2d_bfloat16_matches_float64():
    check_ss2d('triton', torch.bfloat16, (1, 3, 4, 5, 2, 4), channels_last=True)


class FusedKernelSpy:
    """Wraps the fused kernel's forward and backward (the real ones run) and records what passes between them."""

    def __init__(self, monkeypatch):
        self.forward_runs, self.saved = 0, None
        forward, backward = triton_ss2d.ss2d_fwd, triton_ss2d.ss2d_bwd

        def spied_forward(*args):
            self.forward_runs += 1
            y, saved = forward(*args)
            self.saved = tuple(t.clone() for t in saved)
            return y, saved

        def spied_backward(*args):
            *_, saved = args
            assert isinstance(saved, tuple) and len(saved) == len(self.saved)
            for got, kept in zip(saved, self.saved):
                torch.testing.assert_close(got, kept, rtol=0, atol=0)
            return backward(*args)

        monkeypatch.setattr(triton_ss2d, 'ss2d_fwd', spied_forward)
        monkeypatch.setattr(triton_ss2d, 'ss2d_bwd', spied_backward)


@pytest.mark.parametrize('channels_last', [False, True])
def test_ss2d_backward_reads_what_the_forward_saved(channels_last, monkeypatch):
    """One forward run per step: the backward gets the forward's saved tensors intact and recomputes nothing."""
    spy = FusedKernelSpy(monkeypatch)
    inputs = make_ss2d_inputs(2, 3, 4, 5, 2, 3, channels_last=channels_last)
    grad_out = torch.randn(inputs['x'].shape)
    out, grads = grads_of(lambda **kw: kernels.ss2d(**kw, channels_last=channels_last, backend='triton'),
                          inputs, grad_out)
    assert spy.forward_runs == 1
    expected, expected_grads = grads_of(lambda **kw: kernels.ss2d(**kw, channels_last=channels_last,
                                                                   backend='torch'), inputs, grad_out)
    assert_close(out, expected, torch.float32, 'out')
    for name in grads:
        assert_close(grads[name], expected_grads[name], torch.float32, 'du' if name == 'x' else name)
    args = tuple(t.clone().requires_grad_() for t in inputs.values())
    torch.library.opcheck(torch.ops.vmamba_kernels.ss2d, (*args, channels_last, True, 'triton'))


def test_ss2d_compiles_with_saved_tensors(monkeypatch):
    spy = FusedKernelSpy(monkeypatch)
    torch._dynamo.reset()
    inputs = make_ss2d_inputs(2, 3, 4, 5, 2, 3)

    def loss(**kw):
        return kernels.ss2d(**kw, backend='triton').square().mean()

    eager_loss, eager_grads = grads_of(loss, inputs, torch.tensor(1.0))
    spy.forward_runs = 0
    compiled_loss, grads = grads_of(torch.compile(loss, fullgraph=True, backend='aot_eager'), inputs,
                                    torch.tensor(1.0))
    assert spy.forward_runs == 1
    torch.testing.assert_close(compiled_loss, eager_loss)
    for name in grads:
        torch.testing.assert_close(grads[name], eager_grads[name])


def test_triton_custom_ops_pass_opcheck():
    scan = make_scan_inputs(1, 2, 2, 3, 9)
    x = make_ss2d_inputs(1, 2, 3, 4, 1, 2)['x']
    for op, args in [
        (torch.ops.vmamba_kernels.cross_scan, (x, False, 'triton')),
        (torch.ops.vmamba_kernels.cross_merge, (kernels.cross_scan(x), 3, 4, True, 'triton')),
        (torch.ops.vmamba_kernels.selective_scan, (*scan.values(), True, True, 'triton')),
    ]:
        args = tuple(a.requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
        torch.library.opcheck(op, args)


def test_selective_scan_accepts_strided_inputs():
    """Views with transposed memory (as einsum outputs are) must give the same values and gradients."""
    inputs = make_scan_inputs(2, 2, 3, 4, 10)

    def transposed_view(t):
        return t.transpose(0, -1).contiguous().transpose(0, -1)

    strided = {k: transposed_view(v).requires_grad_() for k, v in inputs.items()}
    dense = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    assert not strided['u'].is_contiguous()
    grad = torch.randn(2, 6, 10)
    kernels.selective_scan(**strided, backend='triton').backward(grad)
    kernels.selective_scan(**dense, backend='triton').backward(grad)
    for name in inputs:
        torch.testing.assert_close(strided[name].grad, dense[name].grad)
