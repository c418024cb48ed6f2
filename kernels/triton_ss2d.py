"""Fused SS2D core in Triton: cross-scan, projections, selective scan and cross-merge in one op.

Math (per image, direction k in 0..3, channel d, sequence step l)::

    x_dbl_k[p] = W_x[k] @ x[:, p]                      (R + 2N values per position p)
    dt, B, C   = split(x_dbl_k, [R, N, N])
    Δ          = softplus(W_dt[k] @ dt + bias[k])      (per channel)
    h_l        = exp(Δ_l A) h_{l-1} + Δ_l B_l u_l      (u = x at the l-th position of direction k)
    y[p]      += C_l · h_l + D u_l                     (summed over the four directions)

Directions walk the H×W map row-major (0), column-major (1) and both reversed (2, 3).

Design:

* The projections commute with the scan (the scan is a permutation, the projections act per position), so
  ``x_dbl`` is one small GEMM on the unscanned map: the four scanned copies of ``x`` never exist.
* ``Δ`` is expanded inside the scan kernel from the R-dimensional ``dt`` (a (chunk, R) × (R, channels)
  tensor-core product); in the forward the full-width Δ never reaches memory.
* One program owns (image, direction, block of channels) and walks its direction in chunks of positions.
  Each direction is index arithmetic over the same ``x`` buffer (the column-major order by a multiply and a
  shift instead of an integer division per position). Inside a chunk the recurrence is an
  associative scan of affine maps; the state (fp32) is carried from chunk to chunk.
* Grids too small to fill the GPU (few images: detection, segmentation) split each direction into segments,
  one program each. The recurrence is affine in its start value, so a summary launch reduces every segment to
  (decay product, end state from zero), forwards, or (decay product, adjoint leaving its start), backwards;
  each segment program then composes the summaries before it (after it, backwards) and walks its own
  segment from the true value. The summary launch is the same kernel with the outputs compiled out.
* The four directions are merged by fp32 atomic adds into the output, so no per-direction copy exists (the
  order of those adds is not fixed: y and dx can differ between runs in the last bits).
* Backward recomputes the forward from the chunk-start states saved by the forward and runs the adjoint
  recurrence backwards. It holds no tensor-core products. For a small rank R it expands z = W_dt dt + bias with
  R FMAs per element; for a larger one z is a batched GEMM before the kernel. The kernel writes z's gradient,
  and the gradients of dt and W_dt are batched GEMMs after it (inside the kernel, as tensor-core products
  they spill registers, as reductions they cost more than the GEMMs). It accumulates dx over the four
  directions by atomics; the gradients of the projections come from small GEMMs over the per-position
  gradients of ``x_dbl``.
* Zero-size maps (no images, channels or positions) launch nothing: y and the gradients are zeros.
"""
import collections
import functools

import torch
import triton
import triton.language as tl

from .dispatch import interpreting
from .triton_common import adjoint_combine, affine_combine, launchable, softplus_and_sigmoid

# Launch tunables: the fastest of a per-shape sweep over VMamba-T's four stages with fp32 x
# (``tools/analysis_tools/benchmark_ss2d.py --sweep`` repeats it). tl.dot needs blocks of at least 16.

# Positions per chunk; the forward saves the state at each chunk start and the backward starts from them.
CHUNK = 16
# One warp: the chunk's positions then sit on 4 lanes of one warp, so the scan needs no shared memory.
FWD_BLOCK_D, FWD_WARPS = 32, 1
# The backward has no tensor-core products left; 16 channels in one warp fit its registers without spills,
# so more programs fit per SM.
BWD_BLOCK_D, BWD_WARPS = 16, 1
# The channels per program above are for grids that fill the GPU. One program walks its whole direction, so a
# grid of few programs (few images, few channels: high resolution at batch 32, detection at batch 2) leaves
# SMs idle while each program runs long. Below this many programs per SM the block is halved, down to 16
# channels in the forward (tl.dot) and 8 in the backward: more, shorter programs then share the work, while a
# grid that fills the GPU (VMamba-T at 224² and batch 128) keeps the widest blocks.
MIN_PROGRAMS_PER_SM = 8
FWD_MIN_BLOCK_D, BWD_MIN_BLOCK_D = 16, 8
# When even the narrowest blocks leave the grid short of that, each direction is split into segments that run in
# parallel: a summary launch reduces each segment to an affine map of its start state (forward) or of the adjoint
# entering its end (backward), and every segment program composes the maps before it to start from the true
# value. The summary launch and the second walk pay only for long segments, so a segment keeps at least
# MIN_SEGMENT_CHUNKS chunks (docs/kernels_notes.md has the measurement behind it); the composition is a loop over
# the segments in every program, so there are at most MAX_SEGMENTS.
MIN_SEGMENT_CHUNKS, MAX_SEGMENTS = 32, 64
# fp32-accurate tensor-core product (three tf32 passes) for the forward's low-rank Δ projection: as accurate as
# FMA ('ieee') for these short sums, and faster.
DOT_PRECISION = 'tf32x3'
# The hardware's approximate log and division in softplus (see triton_common.softplus_and_sigmoid): they
# replace a sizeable share of the forward's instructions, while the backward, bound by other work, runs
# faster with the accurate ones. The interpreter has no libdevice, so it always runs the accurate ones.
FWD_FAST_MATH, BWD_FAST_MATH = True, False
# Up to this rank the backward expands z = W_dt dt inside the kernel (R FMAs per element), above it z is a
# batched GEMM before the kernel: R FMAs per element beat the GEMM's extra pass over z only while R is small
# (VMamba's ranks are D / 16).
Z_INLINE_MAX_RANK = 12


def chunk_size(seq_len):
    """Positions per chunk of the scan; forward and backward must agree on it."""
    return CHUNK


@triton.jit
def _positions(chunk, direction, seq_len, height, width, height_magic, height_shift, BLOCK_T: tl.constexpr):
    """Row-major positions visited by steps chunk*BLOCK_T + [0, BLOCK_T) of a direction. The column-major walk
    divides each step by H with a multiply and a shift (see :func:`_division_magic`): a hardware division and
    remainder per position cost tens of instructions."""
    step = chunk * BLOCK_T + tl.arange(0, BLOCK_T)
    valid = step < seq_len
    step = tl.where(valid, step, 0)
    along = tl.where(direction >= 2, seq_len - 1 - step, step)
    if direction % 2 == 1:
        column = ((along.to(tl.int64) * height_magic) >> height_shift).to(tl.int32)
        pos = (along - column * height) * width + column
    else:
        pos = along
    return pos, valid


@triton.jit
def _ss2d_fwd_kernel(
    x_ptr, xdbl_ptr, wdt_ptr, bias_ptr, a_ptr, dskip_ptr, out_ptr, states_ptr, seg_decay_ptr, seg_state_ptr,
    seq_len, height, width, height_magic, height_shift, dim, n_chunks, seg_chunks, n_segments,
    s_xb, s_xl, s_xd, s_db, s_dl, s_dk, s_dc, s_ob, s_ol, s_od,
    R: tl.constexpr, BLOCK_R: tl.constexpr, N: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr, FAST_MATH: tl.constexpr, SUMMARY: tl.constexpr,
):
    """One segment of one direction for a block of channels. With ``SUMMARY`` it only summarises its segment as
    the affine map state_end = decay · state_start + state (the decay product and the end state from zero) for
    the later segments; otherwise it starts from the true state, composed from the earlier segments' summaries,
    and writes y and the chunk-start states."""
    pid = tl.program_id(0)
    batch = tl.program_id(1).to(tl.int64)
    segment = tl.program_id(2)
    direction = pid % 4
    chan = (pid // 4) * BLOCK_D + tl.arange(0, BLOCK_D)
    chan_mask = chan < dim
    kchan = direction * dim + chan  # row of the (4*D, ...) parameters
    r_idx = tl.arange(0, BLOCK_R)
    wdt_t = tl.load(wdt_ptr + kchan[None, :] * R + r_idx[:, None], mask=(r_idx[:, None] < R) & chan_mask[None, :],
                    other=0.0)  # W_dt[k]^T, (BLOCK_R, BLOCK_D)
    bias = tl.load(bias_ptr + kchan, mask=chan_mask, other=0.0)
    dskip = tl.load(dskip_ptr + kchan, mask=chan_mask, other=0.0)
    n_idx = tl.arange(0, BLOCK_N)
    state_mask = (n_idx[:, None] < N) & chan_mask[None, :]
    state_base = states_ptr + (batch * 4 + direction) * n_chunks * N * dim + n_idx[:, None] * dim + chan[None, :]
    seg_base = (batch * 4 + direction) * n_segments * N * dim + n_idx[:, None] * dim + chan[None, :]
    state = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    decay_product = tl.full((BLOCK_N, BLOCK_D), 1.0, tl.float32)
    if not SUMMARY:
        for earlier in range(0, segment):
            summary = seg_base + earlier * N * dim
            state = (tl.load(seg_decay_ptr + summary, mask=state_mask, other=1.0) * state
                     + tl.load(seg_state_ptr + summary, mask=state_mask, other=0.0))
    first_chunk = segment * seg_chunks
    last_chunk = tl.minimum(first_chunk + seg_chunks, n_chunks)
    last_row = tl.arange(0, BLOCK_T)[:, None] == BLOCK_T - 1

    for chunk in range(first_chunk, last_chunk):
        if not SUMMARY:
            tl.store(state_base + chunk * N * dim, state, mask=state_mask)
        pos, valid = _positions(chunk, direction, seq_len, height, width, height_magic, height_shift, BLOCK_T)
        mask = valid[:, None] & chan_mask[None, :]
        u = tl.load(x_ptr + batch * s_xb + pos[:, None] * s_xl + chan[None, :] * s_xd, mask=mask,
                    other=0.0).to(tl.float32)
        xdbl_row = xdbl_ptr + batch * s_db + pos * s_dl + direction * s_dk
        dt = tl.load(xdbl_row[:, None] + r_idx[None, :] * s_dc, mask=valid[:, None] & (r_idx[None, :] < R), other=0.0)
        z = tl.dot(dt, wdt_t, input_precision=DOT_PRECISION) + bias[None, :]
        delta, _ = softplus_and_sigmoid(z, FAST_MATH)
        delta_u = delta * u
        y = dskip[None, :] * u
        for n in tl.static_range(N):
            b_n = tl.load(xdbl_row + (R + n) * s_dc, mask=valid, other=0.0)
            a_n = tl.load(a_ptr + kchan * N + n, mask=chan_mask, other=0.0)
            # Steps past the end are the identity map, so the last row carries the true end state.
            decay = tl.where(mask, tl.exp(delta * a_n[None, :]), 1.0)
            decay_cum, h_local = tl.associative_scan((decay, delta_u * b_n[:, None]), 0, affine_combine)
            h0 = tl.sum(tl.where(n_idx[:, None] == n, state, 0.0), 0)
            h = decay_cum * h0[None, :] + h_local
            if SUMMARY:
                chunk_decay = tl.sum(tl.where(last_row, decay_cum, 0.0), 0)
                decay_product = tl.where(n_idx[:, None] == n, decay_product * chunk_decay[None, :], decay_product)
            else:
                c_n = tl.load(xdbl_row + (R + N + n) * s_dc, mask=valid, other=0.0)
                y += h * c_n[:, None]
            h_end = tl.sum(tl.where(last_row, h, 0.0), 0)
            state = tl.where(n_idx[:, None] == n, h_end[None, :], state)
        if not SUMMARY:
            tl.atomic_add(out_ptr + batch * s_ob + pos[:, None] * s_ol + chan[None, :] * s_od, y, mask=mask,
                          sem='relaxed')

    if SUMMARY:
        summary = seg_base + segment * N * dim
        tl.store(seg_decay_ptr + summary, decay_product, mask=state_mask)
        tl.store(seg_state_ptr + summary, state, mask=state_mask)


@triton.jit
def _ss2d_bwd_kernel(
    x_ptr, dy_ptr, xdbl_ptr, z_ptr, wdt_ptr, bias_ptr, a_ptr, dskip_ptr, states_ptr, seg_decay_ptr, seg_carry_ptr,
    dx_ptr, dxdbl_ptr, dbias_ptr, da_ptr, ddskip_ptr,
    seq_len, height, width, height_magic, height_shift, dim, n_chunks, seg_chunks, n_segments,
    s_xb, s_xl, s_xd, s_yb, s_yl, s_yd, s_db, s_dl, s_dk, s_dc,
    R: tl.constexpr, N: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
    Z_INLINE: tl.constexpr, FAST_MATH: tl.constexpr, SUMMARY: tl.constexpr,
):
    """One segment of one direction for a block of channels, walked from its end. The adjoint flowing out of a
    segment's start is an affine map of the one flowing into its end (the factor is the segment's decay
    product). With ``SUMMARY`` (launched for segments 1 and later) it only computes that map for the earlier
    segments; otherwise it starts from the true adjoint, composed from the later segments' summaries, and
    writes the gradients."""
    pid = tl.program_id(0)
    batch = tl.program_id(1).to(tl.int64)
    segment = tl.program_id(2) + 1 if SUMMARY else tl.program_id(2)
    direction = pid % 4
    chan = (pid // 4) * BLOCK_D + tl.arange(0, BLOCK_D)
    chan_mask = chan < dim
    kchan = direction * dim + chan
    n_idx = tl.arange(0, BLOCK_N)
    dskip = tl.load(dskip_ptr + kchan, mask=chan_mask, other=0.0)
    bias = tl.load(bias_ptr + kchan, mask=chan_mask, other=0.0)
    rows = tl.arange(0, BLOCK_T)
    state_mask = (n_idx[:, None] < N) & chan_mask[None, :]
    state_base = states_ptr + (batch * 4 + direction) * n_chunks * N * dim + n_idx[:, None] * dim + chan[None, :]
    seg_base = (batch * 4 + direction) * n_segments * N * dim + n_idx[:, None] * dim + chan[None, :]

    carry = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)  # a_{next} q_{next} flowing in from the later chunk
    decay_product = tl.full((BLOCK_N, BLOCK_D), 1.0, tl.float32)
    if not SUMMARY:
        for later in range(segment + 1, n_segments):
            summary = seg_base + (n_segments + segment - later) * N * dim  # the last segment first
            carry = (tl.load(seg_decay_ptr + summary, mask=state_mask, other=1.0) * carry
                     + tl.load(seg_carry_ptr + summary, mask=state_mask, other=0.0))
    grad_a = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    grad_bias = tl.zeros((BLOCK_D, ), tl.float32)
    grad_dskip = tl.zeros((BLOCK_D, ), tl.float32)
    first_chunk = segment * seg_chunks
    last_chunk = tl.minimum(first_chunk + seg_chunks, n_chunks)

    for step in range(first_chunk, last_chunk):
        chunk = first_chunk + last_chunk - 1 - step
        pos, valid = _positions(chunk, direction, seq_len, height, width, height_magic, height_shift, BLOCK_T)
        mask = valid[:, None] & chan_mask[None, :]
        dy = tl.load(dy_ptr + batch * s_yb + pos[:, None] * s_yl + chan[None, :] * s_yd, mask=mask,
                     other=0.0).to(tl.float32)
        xdbl_row = xdbl_ptr + batch * s_db + pos * s_dl + direction * s_dk
        dxdbl_row = dxdbl_ptr + batch * s_db + pos * s_dl + direction * s_dk
        # z, then its gradient: (4, B, L, D), row-major positions
        z_ptrs = z_ptr + ((direction * tl.num_programs(1) + batch) * seq_len + pos[:, None]) * dim + chan[None, :]
        if Z_INLINE:
            z = bias[None, :] + tl.zeros((BLOCK_T, BLOCK_D), tl.float32)
            for r in tl.static_range(R):
                dt_r = tl.load(xdbl_row + r * s_dc, mask=valid, other=0.0)
                w_r = tl.load(wdt_ptr + kchan * R + r, mask=chan_mask, other=0.0)
                z += dt_r[:, None] * w_r[None, :]
        else:
            z = tl.load(z_ptrs, mask=mask, other=0.0) + bias[None, :]
        delta, sig = softplus_and_sigmoid(z, FAST_MATH)
        if not SUMMARY:
            u = tl.load(x_ptr + batch * s_xb + pos[:, None] * s_xl + chan[None, :] * s_xd, mask=mask,
                        other=0.0).to(tl.float32)
            delta_u = delta * u
            start = tl.load(state_base + chunk * N * dim, mask=state_mask, other=0.0)
            grad_u = dy * dskip[None, :]
            grad_dskip += tl.sum(dy * u, 0)
            grad_delta = tl.zeros((BLOCK_T, BLOCK_D), tl.float32)
        for n in tl.static_range(N):
            c_n = tl.load(xdbl_row + (R + N + n) * s_dc, mask=valid, other=0.0)
            a_n = tl.load(a_ptr + kchan * N + n, mask=chan_mask, other=0.0)
            decay = tl.where(mask, tl.exp(delta * a_n[None, :]), 1.0)
            # q_l = dL/dh_l = dy_l C_l + a_{l+1} q_{l+1}
            mult, add, _ = tl.associative_scan((tl.full((BLOCK_T, BLOCK_D), 1.0, tl.float32), dy * c_n[:, None],
                                                decay), 0, adjoint_combine, reverse=True)
            r_in = tl.sum(tl.where(n_idx[:, None] == n, carry, 0.0), 0)
            q = add + mult * r_in[None, :]
            first = tl.sum(tl.where(rows[:, None] == 0, decay * q, 0.0), 0)
            carry = tl.where(n_idx[:, None] == n, first[None, :], carry)
            if SUMMARY:
                chunk_decay = tl.sum(tl.where(rows[:, None] == 0, decay * mult, 0.0), 0)
                decay_product = tl.where(n_idx[:, None] == n, decay_product * chunk_decay[None, :], decay_product)
            else:
                b_n = tl.load(xdbl_row + (R + n) * s_dc, mask=valid, other=0.0)
                inject = delta_u * b_n[:, None]
                decay_cum, h_local = tl.associative_scan((decay, inject), 0, affine_combine)
                h0 = tl.sum(tl.where(n_idx[:, None] == n, start, 0.0), 0)
                h = decay_cum * h0[None, :] + h_local
                # decay_l h_{l-1} = h_l - inject_l: no division by a decay that may underflow.
                q_prev = q * (h - inject)
                grad_delta += a_n[None, :] * q_prev + q * (u * b_n[:, None])
                grad_a = tl.where(n_idx[:, None] == n, grad_a + tl.sum(q_prev * delta, 0)[None, :], grad_a)
                q_delta = q * delta
                grad_u += q_delta * b_n[:, None]
                tl.atomic_add(dxdbl_row + (R + n) * s_dc, tl.sum(q_delta * u, 1), mask=valid, sem='relaxed')
                tl.atomic_add(dxdbl_row + (R + N + n) * s_dc, tl.sum(dy * h, 1), mask=valid, sem='relaxed')
        if not SUMMARY:
            grad_z = tl.where(mask, grad_delta * sig, 0.0)
            grad_bias += tl.sum(grad_z, 0)
            tl.store(z_ptrs, grad_z, mask=mask)  # each element is read and written by this program only
            tl.atomic_add(dx_ptr + batch * s_xb + pos[:, None] * s_xl + chan[None, :] * s_xd, grad_u, mask=mask,
                          sem='relaxed')

    if SUMMARY:
        summary = seg_base + segment * N * dim
        tl.store(seg_decay_ptr + summary, decay_product, mask=state_mask)
        tl.store(seg_carry_ptr + summary, carry, mask=state_mask)
    else:
        tl.atomic_add(da_ptr + kchan[None, :] * N + n_idx[:, None], grad_a, mask=state_mask, sem='relaxed')
        tl.atomic_add(dbias_ptr + kchan, grad_bias, mask=chan_mask, sem='relaxed')
        tl.atomic_add(ddskip_ptr + kchan, grad_dskip, mask=chan_mask, sem='relaxed')


def _division_magic(divisor):
    """(magic, shift) with n // divisor == (n * magic) >> shift for every 0 <= n < 2**31: the round-up
    reciprocal with 31 + ceil(log2(divisor)) fraction bits (Granlund and Montgomery, 1994). magic < 2**32, so
    the product fits in int64."""
    shift = 31 + (divisor - 1).bit_length()
    return (1 << shift) // divisor + 1, shift


def _walk(height, width):
    """The kernels' arguments that describe the map: L, H, W and the magic division by H."""
    return (height * width, height, width, *_division_magic(height))


def _flat(t, channels_last):
    """(tensor contiguous in its layout, strides of (batch, row-major position, channel))."""
    t = t.contiguous()
    if channels_last:  # (B, H, W, D)
        return t, (t.stride(0), t.stride(2), t.stride(3))
    return t, (t.stride(0), t.stride(3), t.stride(1))  # (B, D, H, W)


def _kernel_input(x):
    """x as the kernels read it. They compute in fp32 whatever x is, their fp32 path is the faster one and the
    projections promote x to fp32 anyway, so half input is upcast here: a transient copy, while autograd keeps
    the caller's half tensor for the backward (half the bytes of an fp32 one)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _geometry(x, channels_last):
    if channels_last:
        batch, height, width, dim = x.shape
    else:
        batch, dim, height, width = x.shape
    return batch, dim, height, width


def _projection_operands(x, x_proj_weight):
    """x and W_x (as (4C, D)) in the dtype the projections run in: the promotion of both, as in the torch
    backend (fp32 weights under bf16 activations give fp32 x_dbl, not bf16-rounded)."""
    dtype = torch.promote_types(x.dtype, x_proj_weight.dtype)
    return x.to(dtype), x_proj_weight.flatten(0, 1).to(dtype)


def _project(x, x_proj_weight, channels_last):
    """x_dbl (fp32) on the unscanned map, and its (batch, position, direction, column) strides."""
    batch, dim, height, width = _geometry(x, channels_last)
    x, weight = _projection_operands(x, x_proj_weight)
    if channels_last:  # (B, L, 4C): one GEMM over all positions
        xdbl = (x.reshape(batch, height * width, dim) @ weight.t()).float()
    else:  # (B, 4C, L)
        xdbl = (weight @ x.reshape(batch, dim, height * width)).float()
    return xdbl, _project_strides(xdbl, channels_last)


LaunchPlan = collections.namedtuple('LaunchPlan', 'fwd_block_d fwd_segments bwd_block_d bwd_segments')


def launch_plan(batch, dim, seq_len, device):
    """Channels per program and segments per direction of the forward and of the backward kernel."""
    wanted = MIN_PROGRAMS_PER_SM * _multiprocessors(device)
    n_chunks = triton.cdiv(seq_len, chunk_size(seq_len))

    def segments(block_d):
        programs = 4 * triton.cdiv(dim, block_d) * batch
        count = min(MAX_SEGMENTS, triton.cdiv(wanted, max(programs, 1)), n_chunks // MIN_SEGMENT_CHUNKS)
        if count <= 1:
            return 1
        return triton.cdiv(n_chunks, triton.cdiv(n_chunks, count))  # no empty segment

    fwd_block_d, bwd_block_d = channel_blocks(batch, dim, device)
    return LaunchPlan(fwd_block_d, segments(fwd_block_d), bwd_block_d, segments(bwd_block_d))


def channel_blocks(batch, dim, device):
    """Channels per program of the forward and of the backward kernel for this problem."""
    wanted = MIN_PROGRAMS_PER_SM * _multiprocessors(device)

    def narrowed(block_d, narrowest):
        while block_d > narrowest and 4 * triton.cdiv(dim, block_d) * batch < wanted:
            block_d //= 2
        return block_d

    return narrowed(FWD_BLOCK_D, FWD_MIN_BLOCK_D), narrowed(BWD_BLOCK_D, BWD_MIN_BLOCK_D)


@functools.lru_cache
def _multiprocessors(device):
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == 'cuda' else 1


def _launch_shape(batch, dim, seq_len, block_d, segments):
    """grid of (direction and channel block, image, segment), positions per chunk, chunks per direction, chunks
    per segment."""
    block_t = chunk_size(seq_len)
    n_chunks = triton.cdiv(seq_len, block_t)
    return (4 * triton.cdiv(dim, block_d), batch, segments), block_t, n_chunks, triton.cdiv(n_chunks, segments)


def _segment_summaries(batch, dim, d_state, segments, device):
    """Two (B, 4, segments, N, D) fp32 buffers: each segment's decay product and its summarised state or adjoint."""
    return torch.empty(2, batch, 4, segments, d_state, dim, device=device, dtype=torch.float32).unbind(0)


def _fast_math(wanted):
    return wanted and not interpreting()


def _block_rank(rank):
    return max(16, triton.next_power_of_2(rank))  # tl.dot's smallest operand side


def _sizes(x, dt_proj_weight, A, channels_last):
    """(batch, dim, height, width, rank, d_state). The public op has validated the shapes."""
    return (*_geometry(x, channels_last), dt_proj_weight.shape[2], A.shape[1])


def ss2d_saved_like(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last):
    """Empty tensors shaped like the ``saved`` of :func:`ss2d_fwd`, for fake (meta) tracing."""
    batch, dim, height, width, rank, d_state = _sizes(x, dt_proj_weight, A, channels_last)
    seq_len, columns = height * width, x_proj_weight.shape[0] * x_proj_weight.shape[1]
    xdbl_shape = (batch, seq_len, columns) if channels_last else (batch, columns, seq_len)
    n_chunks = triton.cdiv(seq_len, chunk_size(seq_len))
    return (x.new_empty(xdbl_shape, dtype=torch.float32),
            x.new_empty(batch, 4, n_chunks, d_state, dim, dtype=torch.float32))


def ss2d_fwd(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32):
    """Forward of the fused SS2D core. Returns (y, saved) with saved = (x_dbl, chunk_start_states)."""
    with _autocast_off(x):
        return _ss2d_fwd(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32)


def _autocast_off(x):
    # A custom op still runs under the caller's autocast: the projections must run in the dtype chosen here.
    return torch.autocast(x.device.type, enabled=False)


def _ss2d_fwd(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32):
    batch, dim, height, width, rank, d_state = _sizes(x, dt_proj_weight, A, channels_last)
    seq_len = height * width
    out_dtype = x.dtype
    x, x_strides = _flat(_kernel_input(x), channels_last)
    xdbl, d_strides = _project(x, x_proj_weight, channels_last)
    plan = launch_plan(batch, dim, seq_len, x.device)
    grid, block_t, n_chunks, seg_chunks = _launch_shape(batch, dim, seq_len, plan.fwd_block_d, plan.fwd_segments)
    out = torch.zeros(x.shape, device=x.device, dtype=torch.float32)
    _, o_strides = _flat(out, channels_last)
    states = torch.empty(batch, 4, n_chunks, d_state, dim, device=x.device, dtype=torch.float32)
    seg_decay, seg_state = _segment_summaries(batch, dim, d_state, plan.fwd_segments, x.device)
    # An empty map (no images, channels or positions) has nothing to scan: y stays zero.
    if launchable((*grid, seq_len)):
        args = (x, xdbl, dt_proj_weight.float().contiguous(), dt_proj_bias.float().contiguous(),
                A.float().contiguous(), D.float().contiguous(), out, states, seg_decay, seg_state,
                *_walk(height, width), dim, n_chunks, seg_chunks, plan.fwd_segments,
                *x_strides, *d_strides, *o_strides)
        meta = dict(R=rank, BLOCK_R=_block_rank(rank), N=d_state, BLOCK_N=triton.next_power_of_2(d_state),
                    BLOCK_T=block_t, BLOCK_D=plan.fwd_block_d, DOT_PRECISION=DOT_PRECISION,
                    FAST_MATH=_fast_math(FWD_FAST_MATH), num_warps=FWD_WARPS)
        if plan.fwd_segments > 1:  # the last segment's end state is nobody's start state
            _ss2d_fwd_kernel[(*grid[:2], plan.fwd_segments - 1)](*args, SUMMARY=True, **meta)
        _ss2d_fwd_kernel[grid](*args, SUMMARY=False, **meta)
    y = out if out_fp32 else out.to(out_dtype)
    return y, (xdbl, states)


def ss2d_bwd(grad_y, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, saved):
    """Backward of :func:`ss2d_fwd`: (dx, dx_proj_weight, ddt_proj_weight, ddt_proj_bias, dA, dD)."""
    with _autocast_off(x):
        return _ss2d_bwd(grad_y, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, saved)


def _ss2d_bwd(grad_y, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, saved):
    batch, dim, height, width, rank, d_state = _sizes(x, dt_proj_weight, A, channels_last)
    seq_len = height * width
    xdbl, states = saved
    grad_x_dtype = x.dtype
    x, x_strides = _flat(_kernel_input(x), channels_last)
    grad_y, y_strides = _flat(grad_y, channels_last)
    d_strides = _project_strides(xdbl, channels_last)
    plan = launch_plan(batch, dim, seq_len, x.device)
    grid, block_t, n_chunks, seg_chunks = _launch_shape(batch, dim, seq_len, plan.bwd_block_d, plan.bwd_segments)
    grad_x = torch.zeros(x.shape, device=x.device, dtype=torch.float32)
    grad_xdbl = torch.zeros_like(xdbl)
    grad_bias = torch.zeros(4, dim, device=x.device, dtype=torch.float32)
    grad_a = torch.zeros(4 * dim, d_state, device=x.device, dtype=torch.float32)
    grad_dskip = torch.zeros(4 * dim, device=x.device, dtype=torch.float32)
    wdt32 = dt_proj_weight.float().contiguous()
    # z = W_dt dt for every position and direction, (4, B·L, D): expanded by the kernel up to Z_INLINE_MAX_RANK,
    # above it a batched GEMM here (the kernel adds the bias: a baddbmm would first copy the broadcast bias into
    # all of z). Either way the kernel writes z's gradient into this buffer.
    z_inline = rank <= Z_INLINE_MAX_RANK
    dt_rows = _dt_columns(xdbl, rank, channels_last).reshape(4, batch * seq_len, rank)
    if z_inline:
        z = torch.empty(4, batch * seq_len, dim, device=x.device, dtype=torch.float32)
    else:
        z = torch.bmm(dt_rows, wdt32.transpose(1, 2))
    # An empty map leaves the gradients at the zeros above: sums over no positions, channels or images.
    seg_decay, seg_carry = _segment_summaries(batch, dim, d_state, plan.bwd_segments, x.device)
    if launchable((*grid, seq_len)):
        args = (x, grad_y, xdbl, z, wdt32, dt_proj_bias.float().contiguous(), A.float().contiguous(),
                D.float().contiguous(), states, seg_decay, seg_carry, grad_x, grad_xdbl, grad_bias, grad_a,
                grad_dskip, *_walk(height, width), dim, n_chunks, seg_chunks, plan.bwd_segments,
                *x_strides, *y_strides, *d_strides)
        meta = dict(R=rank, N=d_state, BLOCK_N=triton.next_power_of_2(d_state), BLOCK_T=block_t,
                    BLOCK_D=plan.bwd_block_d, Z_INLINE=z_inline, FAST_MATH=_fast_math(BWD_FAST_MATH),
                    num_warps=BWD_WARPS)
        if plan.bwd_segments > 1:  # the first segment's start adjoint flows nowhere
            _ss2d_bwd_kernel[(*grid[:2], plan.bwd_segments - 1)](*args, SUMMARY=True, **meta)
        _ss2d_bwd_kernel[grid](*args, SUMMARY=False, **meta)
    # z = W_dt dt + bias: dt's gradient and W_dt's are two batched GEMMs over the gradient of z.
    grad_z = z
    _dt_columns(grad_xdbl, rank, channels_last).add_(torch.bmm(grad_z, wdt32).view(4, batch, seq_len, rank))
    # One product per (direction, image) then a sum: a single (D × B·L) @ (B·L × R) product gets a few thread
    # blocks that each walk all B·L rows.
    grad_wdt = torch.bmm(grad_z.view(4 * batch, seq_len, dim).transpose(1, 2),
                         dt_rows.reshape(4 * batch, seq_len, rank)).view(4, batch, dim, rank).sum(1)
    # x_dbl = W_x x per position: its gradient flows to x and W_x through two small GEMMs.
    x_op, weight = _projection_operands(x, x_proj_weight)
    grad_xdbl = grad_xdbl.to(weight.dtype)
    if channels_last:
        grad_xdbl = grad_xdbl.reshape(batch * seq_len, weight.shape[0])
        grad_x.view(batch * seq_len, dim).addmm_(grad_xdbl, weight)  # the add in the GEMM's epilogue
        grad_wx = grad_xdbl.t() @ x_op.reshape(batch * seq_len, dim)
    else:
        grad_x.view(batch, dim, seq_len).baddbmm_(weight.t().expand(batch, -1, -1), grad_xdbl)
        grad_wx = torch.einsum('bcl,bdl->cd', grad_xdbl, x_op.reshape(batch, dim, seq_len))
    return (grad_x.to(grad_x_dtype), grad_wx.reshape(x_proj_weight.shape).to(x_proj_weight.dtype),
            grad_wdt.to(dt_proj_weight.dtype), grad_bias.to(dt_proj_bias.dtype), grad_a.to(A.dtype),
            grad_dskip.to(D.dtype))


def _dt_columns(xdbl, rank, channels_last):
    """The dt columns of x_dbl as a (4, B, L, R) view."""
    batch = xdbl.shape[0]
    if channels_last:  # (B, L, 4C)
        return xdbl.unflatten(2, (4, xdbl.shape[2] // 4))[..., :rank].permute(2, 0, 1, 3)
    return xdbl.unflatten(1, (4, xdbl.shape[1] // 4))[:, :, :rank].permute(1, 0, 3, 2)  # (B, 4C, L)


def _project_strides(xdbl, channels_last):
    if channels_last:  # (B, L, 4C)
        cols = xdbl.shape[2] // 4
        return xdbl.stride(0), xdbl.stride(1), cols, 1
    cols = xdbl.shape[1] // 4  # (B, 4C, L)
    return xdbl.stride(0), 1, cols * xdbl.stride(1), xdbl.stride(1)
