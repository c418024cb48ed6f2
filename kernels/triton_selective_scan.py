"""Selective scan in Triton, forward and backward: the triton backend of ``kernels.selective_scan``.

One program owns (batch, group k, block of channels of that group) and walks
the sequence in chunks of ``BLOCK_T`` positions. Inside a chunk the recurrence
h_t = a_t h_{t-1} + b_t is an associative scan over a (channels, states, time)
tile; the fp32 state is carried from chunk to chunk in registers. B and C are
loaded once per chunk for the whole channel block because all its channels
share group k.

The backward recomputes the forward from the chunk-start states (written by a
states-only forward launch, so the op's output stays a single tensor), runs
the adjoint recurrence g_t = C_t gy_t + a_{t+1} g_{t+1} backwards over the
chunks, and reduces dB/dC over the program's channels before writing one
partial per channel block; the wrapper sums the partials.
"""
import torch
import triton
import triton.language as tl

from .triton_common import adjoint_combine, affine_combine, softplus_and_sigmoid

# Positions per chunk, and the largest (channels x states x positions) tile a
# program keeps live; tests lower both to get several chunks and channel blocks
# on tiny shapes.
CHUNK_SIZE = 64
TILE_ELEMENTS = 4096


@triton.jit
def _load_chunk(u_ptr, delta_ptr, bias_ptr, b_ptr, A2, seq_offset, group_offset, chan, chan_mask, n_idx, n_mask,
                t, t_mask, seq_len, DELTA_SOFTPLUS: tl.constexpr):
    """Everything forward and backward need for one chunk, in fp32; ``slope`` is dΔ/d(delta + delta_bias)."""
    ct_mask = chan_mask[:, None] & t_mask[None, :]
    ct_offsets = seq_offset + chan[:, None] * seq_len + t[None, :]
    u = tl.load(u_ptr + ct_offsets, mask=ct_mask, other=0.0).to(tl.float32)
    pre = tl.load(delta_ptr + ct_offsets, mask=ct_mask, other=0.0).to(tl.float32)
    pre += tl.load(bias_ptr + chan, mask=chan_mask, other=0.0)[:, None]
    if DELTA_SOFTPLUS:
        delta, slope = softplus_and_sigmoid(pre, False)
    else:
        delta, slope = pre, tl.full(pre.shape, 1.0, tl.float32)
    nt_mask = n_mask[:, None] & t_mask[None, :]
    nt_offsets = group_offset + n_idx[:, None] * seq_len + t[None, :]
    B = tl.load(b_ptr + nt_offsets, mask=nt_mask, other=0.0).to(tl.float32)
    # Past the end of the sequence a = 1, b = 0: the carried state passes through unchanged.
    decay = tl.where(t_mask[None, None, :], tl.exp2(delta[:, None, :] * A2[:, :, None]), 1.0)
    drive = (delta * u)[:, None, :] * B[None, :, :]
    return u, delta, slope, B, decay, drive


@triton.jit
def _selective_scan_fwd_kernel(
        u_ptr, delta_ptr, a_ptr, b_ptr, c_ptr, d_ptr, bias_ptr, out_ptr, states_ptr,
        channels, groups, seq_len, n_chunks,
        N: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr,
        DELTA_SOFTPLUS: tl.constexpr, STORE_OUTPUT: tl.constexpr, STORE_STATES: tl.constexpr):
    batch = tl.program_id(1).to(tl.int64)
    per_group = channels // groups
    blocks_per_group = tl.cdiv(per_group, BLOCK_D)
    group = tl.program_id(0) // blocks_per_group
    local = (tl.program_id(0) % blocks_per_group) * BLOCK_D + tl.arange(0, BLOCK_D)
    chan_mask = local < per_group
    chan = group * per_group + local
    n_idx = tl.arange(0, BLOCK_N)
    n_mask = n_idx < N
    dn_mask = chan_mask[:, None] & n_mask[None, :]
    # exp(delta A) as exp2(delta A log2(e)): exp2 is the native special-function instruction.
    A2 = tl.load(a_ptr + chan[:, None] * N + n_idx[None, :], mask=dn_mask, other=0.0) * 1.4426950408889634
    skip = tl.load(d_ptr + chan, mask=chan_mask, other=0.0)
    seq_offset = batch * channels * seq_len
    group_offset = (batch * groups + group) * N * seq_len
    state = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for chunk in range(n_chunks):
        if STORE_STATES:
            state_offsets = ((batch * channels + chan[:, None]) * n_chunks + chunk) * N + n_idx[None, :]
            tl.store(states_ptr + state_offsets, state, mask=dn_mask)
        t = chunk * BLOCK_T + tl.arange(0, BLOCK_T)
        t_mask = t < seq_len
        u, _, _, _, decay, drive = _load_chunk(u_ptr, delta_ptr, bias_ptr, b_ptr, A2, seq_offset, group_offset,
                                               chan, chan_mask, n_idx, n_mask, t, t_mask, seq_len, DELTA_SOFTPLUS)
        cum_decay, local_states = tl.associative_scan((decay, drive), 2, affine_combine)
        states = local_states + cum_decay * state[:, :, None]
        if STORE_OUTPUT:
            C = tl.load(c_ptr + group_offset + n_idx[:, None] * seq_len + t[None, :],
                        mask=n_mask[:, None] & t_mask[None, :], other=0.0).to(tl.float32)
            y = tl.sum(states * C[None, :, :], axis=1) + skip[:, None] * u
            tl.store(out_ptr + seq_offset + chan[:, None] * seq_len + t[None, :], y,
                     mask=chan_mask[:, None] & t_mask[None, :])
        last = tl.arange(0, BLOCK_T) == BLOCK_T - 1
        state = tl.sum(tl.where(last[None, None, :], states, 0.0), axis=2)


@triton.jit
def _selective_scan_bwd_kernel(
        grad_ptr, u_ptr, delta_ptr, a_ptr, b_ptr, c_ptr, d_ptr, bias_ptr, states_ptr,
        du_ptr, ddelta_ptr, da_part_ptr, db_part_ptr, dc_part_ptr, dd_part_ptr, dbias_part_ptr,
        channels, groups, seq_len, n_chunks,
        N: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr,
        DELTA_SOFTPLUS: tl.constexpr):
    batch = tl.program_id(1).to(tl.int64)
    per_group = channels // groups
    blocks_per_group = tl.cdiv(per_group, BLOCK_D)
    group = tl.program_id(0) // blocks_per_group
    block = tl.program_id(0) % blocks_per_group
    local = block * BLOCK_D + tl.arange(0, BLOCK_D)
    chan_mask = local < per_group
    chan = group * per_group + local
    n_idx = tl.arange(0, BLOCK_N)
    n_mask = n_idx < N
    dn_mask = chan_mask[:, None] & n_mask[None, :]
    A = tl.load(a_ptr + chan[:, None] * N + n_idx[None, :], mask=dn_mask, other=0.0)
    A2 = A * 1.4426950408889634
    skip = tl.load(d_ptr + chan, mask=chan_mask, other=0.0)
    seq_offset = batch * channels * seq_len
    group_offset = (batch * groups + group) * N * seq_len
    part_offset = ((batch * groups + group) * blocks_per_group + block) * N * seq_len
    first = tl.arange(0, BLOCK_T) == 0
    carry = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # a_s g_s at the first position s of the later chunk
    grad_A = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    grad_skip = tl.zeros((BLOCK_D, ), dtype=tl.float32)
    grad_bias = tl.zeros((BLOCK_D, ), dtype=tl.float32)
    for step in range(n_chunks):
        chunk = n_chunks - 1 - step
        t = chunk * BLOCK_T + tl.arange(0, BLOCK_T)
        t_mask = t < seq_len
        ct_mask = chan_mask[:, None] & t_mask[None, :]
        ct_offsets = seq_offset + chan[:, None] * seq_len + t[None, :]
        u, delta, slope, B, decay, drive = _load_chunk(u_ptr, delta_ptr, bias_ptr, b_ptr, A2, seq_offset,
                                                     group_offset, chan, chan_mask, n_idx, n_mask, t, t_mask,
                                                     seq_len, DELTA_SOFTPLUS)
        nt_mask = n_mask[:, None] & t_mask[None, :]
        C = tl.load(c_ptr + group_offset + n_idx[:, None] * seq_len + t[None, :], mask=nt_mask,
                    other=0.0).to(tl.float32)
        grad_y = tl.load(grad_ptr + ct_offsets, mask=ct_mask, other=0.0).to(tl.float32)
        start = tl.load(states_ptr + ((batch * channels + chan[:, None]) * n_chunks + chunk) * N + n_idx[None, :],
                        mask=dn_mask, other=0.0)
        cum_decay, local_states = tl.associative_scan((decay, drive), 2, affine_combine)
        states = local_states + cum_decay * start[:, :, None]

        mult, add, _ = tl.associative_scan((tl.full(decay.shape, 1.0, tl.float32), C[None, :, :] * grad_y[:, None, :],
                                            decay), 2, adjoint_combine, reverse=True)
        adjoint = add + mult * carry[:, :, None]
        carry = tl.sum(tl.where(first[None, None, :], decay * adjoint, 0.0), axis=2)

        decayed_prev = states - drive  # a_t h_{t-1}, without shifting the states
        adjoint_b = tl.sum(adjoint * B[None, :, :], axis=1)
        grad_u = delta * adjoint_b + skip[:, None] * grad_y
        grad_delta = u * adjoint_b + tl.sum(adjoint * A[:, :, None] * decayed_prev, axis=1)
        grad_delta = grad_delta * slope
        tl.store(du_ptr + ct_offsets, grad_u, mask=ct_mask)
        tl.store(ddelta_ptr + ct_offsets, grad_delta, mask=ct_mask)
        grad_A += tl.sum(adjoint * decayed_prev * delta[:, None, :], axis=2)
        grad_skip += tl.sum(grad_y * u, axis=1)
        grad_bias += tl.sum(tl.where(ct_mask, grad_delta, 0.0), axis=1)
        part_offsets = part_offset + n_idx[:, None] * seq_len + t[None, :]
        tl.store(db_part_ptr + part_offsets, tl.sum(adjoint * (delta * u)[:, None, :], axis=0), mask=nt_mask)
        tl.store(dc_part_ptr + part_offsets, tl.sum(states * grad_y[:, None, :], axis=0), mask=nt_mask)
    chan_offsets = batch * channels + chan
    tl.store(da_part_ptr + chan_offsets[:, None] * N + n_idx[None, :], grad_A, mask=dn_mask)
    tl.store(dd_part_ptr + chan_offsets, grad_skip, mask=chan_mask)
    tl.store(dbias_part_ptr + chan_offsets, grad_bias, mask=chan_mask)


def _tiles(per_group, state, seq_len):
    """(BLOCK_D, BLOCK_N, BLOCK_T): one chunk of positions, as many channels as the tile budget allows."""
    block_n = triton.next_power_of_2(state)
    block_t = min(CHUNK_SIZE, triton.next_power_of_2(seq_len))
    block_d = min(triton.next_power_of_2(per_group), max(1, TILE_ELEMENTS // (block_n * block_t)))
    return block_d, block_n, block_t


def _prepare(u, delta, A, B, C, D, delta_bias):
    batch, channels, seq_len = u.shape
    groups, state = B.shape[1], A.shape[1]
    block_d, block_n, block_t = _tiles(channels // groups, state, seq_len)
    n_chunks = triton.cdiv(seq_len, block_t)
    grid = (groups * triton.cdiv(channels // groups, block_d), batch)
    zeros = u.new_zeros(channels, dtype=torch.float32)
    tensors = (u.contiguous(), delta.contiguous(), A.float().contiguous(), B.contiguous(), C.contiguous(),
               zeros if D is None else D.float().contiguous(),
               zeros if delta_bias is None else delta_bias.float().contiguous())
    meta = dict(N=state, BLOCK_N=block_n, BLOCK_D=block_d, BLOCK_T=block_t)
    return tensors, (channels, groups, seq_len, n_chunks), grid, meta


def _chunk_start_states(tensors, sizes, grid, meta, delta_softplus):
    u = tensors[0]
    channels, _, _, n_chunks = sizes
    states = torch.empty(u.shape[0], channels, n_chunks, meta['N'], device=u.device, dtype=torch.float32)
    _selective_scan_fwd_kernel[grid](*tensors, None, states, *sizes, **meta, DELTA_SOFTPLUS=delta_softplus,
                                     STORE_OUTPUT=False, STORE_STATES=True)
    return states


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, out_fp32=True):
    out = torch.empty(u.shape, device=u.device, dtype=torch.float32 if out_fp32 else u.dtype)
    if u.numel() == 0:  # no images, channels or positions: an empty output, and no tiles to size
        return out
    tensors, sizes, grid, meta = _prepare(u, delta, A, B, C, D, delta_bias)
    _selective_scan_fwd_kernel[grid](*tensors, out, None, *sizes, **meta, DELTA_SOFTPLUS=delta_softplus,
                                     STORE_OUTPUT=True, STORE_STATES=False)
    return out


def selective_scan_backward(grad_out, u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """(du, ddelta, dA, dB, dC, dD, ddelta_bias), matching ``reference.selective_scan_backward``."""
    if u.numel() == 0:
        return _zero_size_grads(u, delta, A, B, C, D, delta_bias)
    tensors, sizes, grid, meta = _prepare(u, delta, A, B, C, D, delta_bias)
    states = _chunk_start_states(tensors, sizes, grid, meta, delta_softplus)
    batch, channels, seq_len = u.shape
    groups, state = B.shape[1], A.shape[1]
    blocks_per_group = grid[0] // groups
    f32 = dict(device=u.device, dtype=torch.float32)
    # Not empty_like: that keeps a strided input's layout, and the kernel writes contiguously.
    du = torch.empty(u.shape, device=u.device, dtype=u.dtype)
    ddelta = torch.empty(delta.shape, device=u.device, dtype=delta.dtype)
    dA_part = torch.empty(batch, channels, state, **f32)
    dB_part = torch.empty(batch, groups, blocks_per_group, state, seq_len, **f32)
    dC_part = torch.empty_like(dB_part)
    dD_part = torch.empty(batch, channels, **f32)
    dbias_part = torch.empty_like(dD_part)
    _selective_scan_bwd_kernel[grid](grad_out.contiguous(), *tensors, states, du, ddelta, dA_part, dB_part, dC_part,
                                     dD_part, dbias_part, *sizes, **meta, DELTA_SOFTPLUS=delta_softplus)
    vector_dtype = A.dtype
    return (du, ddelta, dA_part.sum(0).to(A.dtype), dB_part.sum(2).to(B.dtype), dC_part.sum(2).to(C.dtype),
            dD_part.sum(0).to(vector_dtype if D is None else D.dtype),
            dbias_part.sum(0).to(vector_dtype if delta_bias is None else delta_bias.dtype))


def _zero_size_grads(u, delta, A, B, C, D, delta_bias):
    """The gradients when u has no elements: empty for the empty inputs, zero (sums over nothing) for the rest.
    An absent D or delta_bias gets a gradient of A's dtype, as in the kernel path."""
    vector = A.new_empty(A.shape[0])
    inputs = (u, delta, A, B, C, vector if D is None else D, vector if delta_bias is None else delta_bias)
    return tuple(torch.zeros(t.shape, device=t.device, dtype=t.dtype) for t in inputs)
