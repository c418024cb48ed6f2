"""Independent oracles, input factories and tolerances shared by the kernel tests.

The naive per-step loop below is the ground truth for the vectorized torch
backend (in float64); the float64 torch backend is then the oracle for the
fp32/bf16/fp16 runs of every backend, compared with mamba-ssm's tolerances.
"""
import torch
import torch.nn.functional as F

import kernels

# (rtol, atol) of the forward output, dB and dC per input dtype; du doubles them,
# ddelta takes rtol x5 and atol x10, and the parameter grads (dA, dD,
# ddelta_bias, projection weights) are held to at least 1e-3.
TOLERANCES = {torch.float32: (6e-4, 2e-3), torch.bfloat16: (3e-2, 5e-2), torch.float16: (3e-3, 5e-3)}
GRAD_SCALE = {'du': (2, 2), 'ddelta': (5, 10)}


def tolerance(dtype, name='out'):
    rtol, atol = TOLERANCES[dtype]
    if name in GRAD_SCALE:
        scale_r, scale_a = GRAD_SCALE[name]
        return rtol * scale_r, atol * scale_a
    if name in ('out', 'dB', 'dC'):
        return rtol, atol
    return max(rtol, 1e-3), max(atol, 1e-3)


def assert_close(actual, expected, dtype, name):
    rtol, atol = tolerance(dtype, name)
    assert torch.isfinite(actual).all(), f'{name}: non-finite values'
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol,
                               msg=lambda m: f'{name} ({dtype}): {m}')


def naive_selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """One Python step per position, straight from the recurrence: slow, obviously right."""
    channels = u.shape[1]
    repeat = channels // B.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    B = B.repeat_interleave(repeat, dim=1)
    C = C.repeat_interleave(repeat, dim=1)
    state = u.new_zeros(u.shape[0], channels, A.shape[1])
    outputs = []
    for t in range(u.shape[2]):
        state = torch.exp(delta[:, :, t, None] * A) * state + (delta[:, :, t] * u[:, :, t])[..., None] * B[..., t]
        outputs.append((state * C[..., t]).sum(-1))
    y = torch.stack(outputs, dim=-1)
    return y if D is None else y + D[:, None] * u


def naive_cross_scan(x):
    """Index arithmetic per direction, written out position by position."""
    batch, channels, height, width = x.shape
    length = height * width
    out = x.new_empty(batch, 4, channels, length)
    for h in range(height):
        for w in range(width):
            row, col = h * width + w, w * height + h
            out[:, 0, :, row] = x[:, :, h, w]
            out[:, 1, :, col] = x[:, :, h, w]
            out[:, 2, :, length - 1 - row] = x[:, :, h, w]
            out[:, 3, :, length - 1 - col] = x[:, :, h, w]
    return out


def make_scan_inputs(batch, groups, channels_per_group, state, length, dtype=torch.float32, *,
                     delta_shift=0.0, generator=None, device='cpu'):
    """Fresh random selective-scan inputs; nothing is zero, A is negative like -exp(A_log).

    ``delta_shift`` moves the pre-softplus delta: -8 gives tiny steps (~3e-4),
    +6 large ones, the regimes where decays vanish or saturate.
    """
    channels = groups * channels_per_group

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale

    inputs = dict(
        u=randn(batch, channels, length),
        delta=randn(batch, channels, length, scale=0.5) + delta_shift,
        A=-torch.exp(randn(channels, state, scale=0.5)),
        B=randn(batch, groups, state, length),
        C=randn(batch, groups, state, length),
        D=randn(channels),
        delta_bias=randn(channels, scale=0.5),
    )
    low_precision = ('u', 'delta', 'B', 'C')
    return {name: t.to(device=device, dtype=dtype if name in low_precision else torch.float32)
            for name, t in inputs.items()}


def make_ss2d_inputs(batch, channels, height, width, rank, state, dtype=torch.float32, *, channels_last=False,
                     generator=None, device='cpu'):
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale

    x = randn(batch, height, width, channels) if channels_last else randn(batch, channels, height, width)
    inputs = dict(
        x=x,
        x_proj_weight=randn(4, rank + 2 * state, channels, scale=channels**-0.5),
        dt_proj_weight=randn(4, channels, rank, scale=rank**-0.5),
        dt_proj_bias=randn(4, channels, scale=0.5) - 1.0,
        A=-torch.exp(randn(4 * channels, state, scale=0.5)),
        D=randn(4 * channels),
    )
    return {name: t.to(device=device, dtype=dtype if name == 'x' else torch.float32) for name, t in inputs.items()}


def grads_of(fn, inputs, grad_out):
    """Run fn(**inputs) with grad and return (out, {name: grad})."""
    leaves = {name: t.detach().clone().requires_grad_() for name, t in inputs.items()}
    out = fn(**leaves)
    out.backward(grad_out.to(out.dtype))
    return out.detach(), {name: t.grad for name, t in leaves.items()}


def check_selective_scan(backend, dtype, shape, *, out_fp32=True, delta_softplus=True, without=(),
                         generator=None, delta_shift=0.0):
    """Output and all gradients of one backend's selective_scan against the float64 torch backend.

    shape is (batch, K, D per group, N, L); ``without`` names optional inputs to leave out.
    """
    inputs = make_scan_inputs(*shape, dtype, generator=generator, delta_shift=delta_shift)
    for name in without:
        del inputs[name]
    if not delta_softplus:  # a negative step, delta + delta_bias, would make the state grow without bound
        for name in ('delta', 'delta_bias'):
            if name in inputs:
                inputs[name] = inputs[name].abs()
    grad_out = torch.randn(shape[0], shape[1] * shape[2], shape[4], generator=generator)

    def run(backend_name):
        return lambda **kw: kernels.selective_scan(**kw, delta_softplus=delta_softplus, out_fp32=out_fp32,
                                                   backend=backend_name)

    out, grads = grads_of(run(backend), inputs, grad_out)
    expected, expected_grads = grads_of(run('torch'), {k: v.double() for k, v in inputs.items()},
                                        grad_out.to(out.dtype).double())
    assert out.dtype == (torch.float32 if out_fp32 else dtype)
    assert_close(out, expected, dtype, 'out')
    for name, grad in grads.items():
        assert grad.dtype == inputs[name].dtype
        assert_close(grad, expected_grads[name], dtype, 'd' + name)


def check_ss2d(backend, dtype, shape, channels_last, generator=None):
    """Output and all gradients of one backend's ss2d against the float64 torch backend.

    shape is (batch, D, H, W, R, N).
    """
    inputs = make_ss2d_inputs(*shape, dtype, channels_last=channels_last, generator=generator)
    grad_out = torch.randn(inputs['x'].shape, generator=generator)

    def run(backend_name):
        return lambda **kw: kernels.ss2d(**kw, channels_last=channels_last, backend=backend_name)

    out, grads = grads_of(run(backend), inputs, grad_out)
    expected, expected_grads = grads_of(run('torch'), {k: v.double() for k, v in inputs.items()},
                                        grad_out.double())
    assert out.shape == inputs['x'].shape and out.dtype == torch.float32
    assert_close(out, expected, dtype, 'out')
    for name, grad in grads.items():
        assert grad.dtype == inputs[name].dtype
        assert_close(grad, expected_grads[name], dtype, 'du' if name == 'x' else name)


def nan_filled(factory):
    """``factory`` (torch.empty, empty_like) with floating results filled with NaN: a kernel that leaves an
    element of its output unwritten then shows it."""

    def make(*args, **kwargs):
        tensor = factory(*args, **kwargs)
        return tensor.fill_(float('nan')) if tensor.is_floating_point() else tensor

    return make
