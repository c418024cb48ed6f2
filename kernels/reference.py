"""Vectorized torch implementation of the SS2D ops, forward and backward: the ``torch`` backend.

It runs on any device and in float64, so the tests use it as the oracle for the
Triton kernels, and ONNX export traces it in place of the custom ops
(``kernels.reference_decompositions``). The selective scan is a chunked parallel
scan (a few doubling steps per chunk plus a scan over chunk carries), never a
Python loop over the sequence, so it stays usable as a fallback for long
sequences on a GPU. ``ss2d`` is the composition of the other ops.

Shapes (see ``kernels/README.md`` for the full contract)::

    u, delta       (batch, K * D, L)
    A              (K * D, N)
    B, C           (batch, K, N, L)   shared by the D channels of group k
    D, delta_bias  (K * D,)
"""
import torch
import torch.nn.functional as F

# Doubling steps cost O(L log chunk); 128 keeps that at 7 passes while the
# carry scan over L / 128 chunks stays negligible.
CHUNK_SIZE = 128


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Scans run in fp32 (fp64 for fp64 inputs): fp16/bf16 state overflows or drifts."""
    return torch.promote_types(dtype, torch.float32)


def cross_scan(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """(B, D, H, W) or (B, H, W, D) -> (B, 4, D, H * W): row-major, column-major, both reversed."""
    if channels_last:
        x = x.permute(0, 3, 1, 2)
    batch, channels, height, width = x.shape
    rows = x.reshape(batch, channels, height * width)
    cols = x.transpose(2, 3).reshape(batch, channels, height * width)
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)


def cross_merge(y: torch.Tensor, height: int, width: int, channels_last: bool = False) -> torch.Tensor:
    """Adjoint of :func:`cross_scan`: map the 4 directions back onto the grid and sum them."""
    batch, _, channels, _ = y.shape
    acc = y.to(compute_dtype(y.dtype))
    acc = acc[:, :2] + acc[:, 2:].flip(-1)
    rows = acc[:, 0].reshape(batch, channels, height, width)
    cols = acc[:, 1].reshape(batch, channels, width, height).transpose(2, 3)
    out = (rows + cols).to(y.dtype)
    return out.permute(0, 2, 3, 1).contiguous() if channels_last else out


def linear_scan(decay: torch.Tensor, inputs: torch.Tensor):
    """Solve h_t = decay_t * h_{t-1} + inputs_t (h_{-1} = 0) along the last dim by doubling.

    Returns (prod_{s<=t} decay_s, h_t). Only products of decays are formed, never
    their quotients, so nothing overflows when decays underflow to zero.
    """
    length = inputs.shape[-1]
    offset = 1
    while offset < length:
        inputs = inputs + decay * F.pad(inputs[..., :-offset], (offset, 0))
        decay = decay * F.pad(decay[..., :-offset], (offset, 0), value=1.0)
        offset *= 2
    return decay, inputs


def chunked_linear_scan(decay: torch.Tensor, inputs: torch.Tensor, chunk_size=None):
    """:func:`linear_scan` within chunks, then a scan over the chunk-end states as carries."""
    chunk_size = chunk_size or CHUNK_SIZE
    length = inputs.shape[-1]
    if length <= chunk_size:
        return linear_scan(decay, inputs)[1]
    num_chunks = -(-length // chunk_size)
    pad = num_chunks * chunk_size - length
    # Padding sits after the real positions, so it cannot leak into them.
    decay = F.pad(decay, (0, pad), value=1.0).unflatten(-1, (num_chunks, chunk_size))
    inputs = F.pad(inputs, (0, pad)).unflatten(-1, (num_chunks, chunk_size))
    cum_decay, local = linear_scan(decay, inputs)
    _, chunk_end_states = linear_scan(cum_decay[..., -1], local[..., -1])
    carry_in = F.pad(chunk_end_states[..., :-1], (1, 0))
    states = local + cum_decay * carry_in[..., None]
    return states.flatten(-2)[..., :length]


def _per_channel(groups: torch.Tensor, channels: int) -> torch.Tensor:
    """(batch, K, N, L) -> (batch, K * D, N, L): channel c reads group c // D."""
    batch, num_groups, state, length = groups.shape
    expanded = groups.unsqueeze(2).expand(batch, num_groups, channels // num_groups, state, length)
    return expanded.reshape(batch, channels, state, length)


def _per_group(per_channel: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Adjoint of :func:`_per_channel`: sum the D channels of each group."""
    batch, channels, state, length = per_channel.shape
    return per_channel.view(batch, num_groups, channels // num_groups, state, length).sum(2)


def _delta_pre_softplus(delta, delta_bias, dtype):
    delta = delta.to(dtype)
    return delta if delta_bias is None else delta + delta_bias.to(dtype)[:, None]


def _scan_states(u, delta, A, B, C, delta_bias, delta_softplus):
    """Everything the forward and backward share, in the compute dtype."""
    dtype = compute_dtype(u.dtype)
    channels = u.shape[1]
    pre = _delta_pre_softplus(delta, delta_bias, dtype)
    delta = F.softplus(pre) if delta_softplus else pre
    u = u.to(dtype)
    B = _per_channel(B.to(dtype), channels)
    C = _per_channel(C.to(dtype), channels)
    decay = torch.exp(delta[:, :, None, :] * A.to(dtype)[None, :, :, None])
    drive = (delta * u)[:, :, None, :] * B
    states = chunked_linear_scan(decay, drive)
    return pre, delta, u, B, C, decay, drive, states


def output_dtype(dtype: torch.dtype, out_fp32: bool) -> torch.dtype:
    return compute_dtype(dtype) if out_fp32 else dtype


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, out_fp32=True):
    """y_t = C_t . h_t + D u_t with h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t."""
    *_, u_c, _, C_c, _, _, states = _scan_states(u, delta, A, B, C, delta_bias, delta_softplus)
    y = (states * C_c).sum(2)
    if D is not None:
        y = y + D.to(y.dtype)[:, None] * u_c
    return y.to(output_dtype(u.dtype, out_fp32))


def selective_scan_backward(grad_out, u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """Gradients of :func:`selective_scan` by the adjoint recurrence, recomputing the states.

    Returns (du, ddelta, dA, dB, dC, dD, ddelta_bias). dD and ddelta_bias are
    cheap sums, always returned; the caller drops them when D / delta_bias were None.
    """
    pre, delta_eff, u_c, B_c, C_c, decay, drive, states = _scan_states(
        u, delta, A, B, C, delta_bias, delta_softplus)
    grad = grad_out.to(u_c.dtype)
    num_groups = B.shape[1]
    # The adjoint runs backwards in time: g_t = C_t grad_t + decay_{t+1} g_{t+1}.
    next_decay = F.pad(decay[..., 1:], (0, 1))
    state_grad = chunked_linear_scan(next_decay.flip(-1), (C_c * grad[:, :, None]).flip(-1)).flip(-1)
    decayed_prev = states - drive  # decay_t * h_{t-1}, without shifting the states
    du = (state_grad * B_c).sum(2) * delta_eff
    if D is not None:
        du = du + D.to(grad.dtype)[:, None] * grad
    ddelta = (state_grad * (B_c * u_c[:, :, None] + A.to(grad.dtype)[None, :, :, None] * decayed_prev)).sum(2)
    dA = (state_grad * decayed_prev * delta_eff[:, :, None]).sum((0, 3))
    dB = _per_group(state_grad * (delta_eff * u_c)[:, :, None], num_groups)
    dC = _per_group(states * grad[:, :, None], num_groups)
    if delta_softplus:
        ddelta = ddelta * torch.sigmoid(pre)
    dD = (grad * u_c).sum((0, 2))
    ddelta_bias = ddelta.sum((0, 2))
    return (du.to(u.dtype), ddelta.to(delta.dtype), dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
            dD.to(A.dtype if D is None else D.dtype),
            ddelta_bias.to(A.dtype if delta_bias is None else delta_bias.dtype))


def _image_size(x, channels_last):
    return (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])


def _project(x, x_proj_weight, dt_proj_weight, channels_last):
    """Scan x and apply the per-direction projections; returns (xs, dts, B, C, delta), each (B, 4, ., L)."""
    rank = dt_proj_weight.shape[2]
    state = (x_proj_weight.shape[1] - rank) // 2
    xs = cross_scan(x, channels_last)
    dtype = torch.promote_types(x.dtype, x_proj_weight.dtype)
    x_dbl = torch.einsum('kcd,bkdl->bkcl', x_proj_weight.to(dtype), xs.to(dtype))
    dts, B, C = x_dbl.split([rank, state, state], dim=2)
    delta = torch.einsum('kdr,bkrl->bkdl', dt_proj_weight.to(dtype), dts)
    return xs, dts, B.contiguous(), C.contiguous(), delta


def ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last=False, out_fp32=True):
    """cross_scan, per-direction projections, selective_scan (softplus, delta_bias = dt_proj_bias), cross_merge."""
    height, width = _image_size(x, channels_last)
    xs, _, B, C, delta = _project(x, x_proj_weight, dt_proj_weight, channels_last)
    y = selective_scan(xs.flatten(1, 2), delta.flatten(1, 2), A, B, C, D, dt_proj_bias.flatten(), True, out_fp32)
    return cross_merge(y.unflatten(1, (4, xs.shape[2])), height, width, channels_last)


def ss2d_backward(grad_out, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last=False):
    """Gradients of :func:`ss2d`, recomputing its forward: (dx, dx_proj_weight, ddt_proj_weight, ddt_proj_bias,
    dA, dD)."""
    height, width = _image_size(x, channels_last)
    xs, dts, B, C, delta = _project(x, x_proj_weight, dt_proj_weight, channels_last)
    channels = xs.shape[2]
    grad_y = cross_scan(grad_out, channels_last)  # cross_scan is cross_merge's adjoint
    du, ddelta, dA, dB, dC, dD, ddt_bias = selective_scan_backward(
        grad_y.flatten(1, 2), xs.flatten(1, 2), delta.flatten(1, 2), A, B, C, D, dt_proj_bias.flatten(), True)
    ddelta = ddelta.unflatten(1, (4, channels))
    ddts = torch.einsum('kdr,bkdl->bkrl', dt_proj_weight.to(ddelta.dtype), ddelta)
    ddt_proj_weight = torch.einsum('bkdl,bkrl->kdr', ddelta, dts.to(ddelta.dtype))
    dx_dbl = torch.cat([ddts, dB.to(ddts.dtype), dC.to(ddts.dtype)], dim=2)
    dx_proj_weight = torch.einsum('bkcl,bkdl->kcd', dx_dbl, xs.to(dx_dbl.dtype))
    dxs = du.unflatten(1, (4, channels)).to(dx_dbl.dtype) + torch.einsum(
        'kcd,bkcl->bkdl', x_proj_weight.to(dx_dbl.dtype), dx_dbl)
    dx = cross_merge(dxs, height, width, channels_last)
    return (dx.to(x.dtype), dx_proj_weight.to(x_proj_weight.dtype), ddt_proj_weight.to(dt_proj_weight.dtype),
            ddt_bias.view_as(dt_proj_bias).to(dt_proj_bias.dtype), dA, dD)
