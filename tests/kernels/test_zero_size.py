"""Zero-size inputs: every public op, on every backend, returns correctly shaped empty outputs, and its
backward returns gradients shaped like the inputs, empty where the input is and zero where it is not (a sum
over no images, positions or channels).

Fresh buffers are poisoned with NaN, so a gradient that is allocated but never written fails the zero check.
"""
import pytest
import torch

import kernels
from kernel_oracles import nan_filled

BACKENDS = ['torch', 'triton']
# The Triton backend runs on CUDA tensors, or on CPU tensors under the interpreter where there is no GPU.
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'


@pytest.fixture(autouse=True)
def poisoned_buffers(monkeypatch):
    monkeypatch.setattr(torch, 'empty', nan_filled(torch.empty))
    monkeypatch.setattr(torch, 'empty_like', nan_filled(torch.empty_like))


@pytest.fixture(autouse=True)
def on_the_kernels_device():
    """Every input of these tests is made on the device the Triton kernels run on."""
    with torch.device(DEVICE):
        yield


def run_and_check(op, inputs, expected_shape):
    """Run op(**inputs) with gradients; check the output's shape and every gradient's shape and zeros."""
    leaves = {name: t.requires_grad_() for name, t in inputs.items()}
    out = op(**leaves)
    assert tuple(out.shape) == expected_shape
    assert out.numel() == 0
    out.sum().backward()
    for name, leaf in leaves.items():
        assert leaf.grad is not None, name
        assert leaf.grad.shape == leaf.shape and leaf.grad.dtype == leaf.dtype, name
        assert torch.count_nonzero(leaf.grad.nan_to_num(1.0)) == 0, f'{name}: gradient is not zero'


# (batch, channels, height, width): no images, no channels, no rows, no columns
MAPS = [(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 0, 5), (2, 3, 4, 0)]


def image(batch, channels, height, width, channels_last):
    return torch.randn((batch, height, width, channels) if channels_last else (batch, channels, height, width))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('size', MAPS, ids=str)
def test_cross_scan(size, channels_last, backend):
    batch, channels, height, width = size
    run_and_check(lambda x: kernels.cross_scan(x, channels_last, backend=backend),
                  dict(x=image(*size, channels_last)), (batch, 4, channels, height * width))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('size', MAPS, ids=str)
def test_cross_merge(size, channels_last, backend):
    batch, channels, height, width = size
    expected = (batch, height, width, channels) if channels_last else (batch, channels, height, width)
    run_and_check(lambda y: kernels.cross_merge(y, height, width, channels_last, backend=backend),
                  dict(y=torch.randn(batch, 4, channels, height * width)), expected)


# (batch, K, D per group, N, L): no images, no channels, no positions
SCANS = [(0, 2, 3, 4, 10), (2, 2, 0, 4, 10), (2, 2, 3, 4, 0)]


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('optional', [True, False], ids=['with-D-and-bias', 'without'])
@pytest.mark.parametrize('size', SCANS, ids=str)
def test_selective_scan(size, optional, backend):
    batch, groups, per_group, state, length = size
    channels = groups * per_group
    inputs = dict(u=torch.randn(batch, channels, length), delta=torch.randn(batch, channels, length),
                  A=-torch.rand(channels, state), B=torch.randn(batch, groups, state, length),
                  C=torch.randn(batch, groups, state, length))
    if optional:
        inputs.update(D=torch.randn(channels), delta_bias=torch.randn(channels))
    run_and_check(lambda **kw: kernels.selective_scan(**kw, backend=backend), inputs, (batch, channels, length))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('size', MAPS, ids=str)
def test_ss2d(size, channels_last, backend):
    batch, channels, height, width = size
    rank, state = 2, 3
    x = image(*size, channels_last)
    inputs = dict(x=x, x_proj_weight=torch.randn(4, rank + 2 * state, channels),
                  dt_proj_weight=torch.randn(4, channels, rank), dt_proj_bias=torch.randn(4, channels),
                  A=-torch.rand(4 * channels, state), D=torch.randn(4 * channels))
    run_and_check(lambda **kw: kernels.ss2d(**kw, channels_last=channels_last, backend=backend), inputs,
                  tuple(x.shape))
