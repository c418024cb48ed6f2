"""LayerNorm over the last dimension in Triton, for many narrow rows (VMamba: C = 96..768, 10^5 rows).

torch's kernels give each row its own block of threads, which leaves most threads idle at C = 96, and under
autocast they only see an fp32 copy of a half input. Here a program owns a tile of whole rows
(``block_rows`` x ``block_cols``, each row padded to a power of two), reads x in its own dtype, and keeps
the statistics in fp32 (fp64 for fp64 x).

Forward: the mean, then the variance of the centred row (two passes over registers, not over memory),
y = (x - mean) * rstd * weight + bias with rstd = 1 / sqrt(var + eps) and the biased variance, as
``F.layer_norm``.

Backward: the statistics are recomputed from x (the row is in registers anyway; saving them would only add
memory traffic). With x̂ = (x - mean) * rstd and g = dy * weight, dx = rstd * (g - mean(g) - x̂ * mean(g * x̂)).
dweight = Σ dy * x̂ and dbias = Σ dy over rows: each program walks a contiguous run of row tiles, adds them
into tile-shaped accumulators (plain adds per tile, one cross-thread reduction at the end) and writes one
partial row; the wrapper sums the partials. No atomics, so the gradients are deterministic.
"""
import torch
import triton
import triton.language as tl

# Launch tunables (tools/analysis_tools/benchmark_layer_norm.py --sweep times alternatives): elements of
# one program's tile, and elements per thread, which sets the warps per program.
FWD_TILE, FWD_ELEMENTS_PER_THREAD = 4096, 16
BWD_TILE, BWD_ELEMENTS_PER_THREAD = 2048, 16
# Backward programs per SM. Each carries its partial gradients across its run of tiles; more programs mean
# more partial rows to sum afterwards, fewer leave SMs idle while waiting on memory.
BWD_PROGRAMS_PER_SM = 8
# A whole row lives in one program's registers; beyond this it would spill too far to be worth it.
MAX_COLUMNS = 16384


@triton.jit
def _normalized_tile(x_ptr, tile, rows, cols, eps, ACC: tl.constexpr, BLOCK_ROWS: tl.constexpr,
                     BLOCK_COLS: tl.constexpr):
    """Offsets, mask, x̂ (0 outside the mask) and rstd of one tile of rows."""
    row = tile.to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    col = tl.arange(0, BLOCK_COLS)
    mask = (row[:, None] < rows) & (col[None, :] < cols)
    offsets = row[:, None] * cols + col[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(ACC)
    mean = tl.sum(x, axis=1) / cols
    centered = tl.where(mask, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centered * centered, axis=1) / cols + eps)
    return offsets, mask, centered * rstd[:, None], rstd


@triton.jit
def _layer_norm_fwd_kernel(x_ptr, weight_ptr, bias_ptr, y_ptr, rows, cols, eps, HAS_WEIGHT: tl.constexpr,
                           HAS_BIAS: tl.constexpr, ACC: tl.constexpr, BLOCK_ROWS: tl.constexpr,
                           BLOCK_COLS: tl.constexpr):
    offsets, mask, y, _ = _normalized_tile(x_ptr, tl.program_id(0), rows, cols, eps, ACC, BLOCK_ROWS, BLOCK_COLS)
    col = tl.arange(0, BLOCK_COLS)
    if HAS_WEIGHT:
        y *= tl.load(weight_ptr + col, mask=col < cols, other=0.0).to(ACC)[None, :]
    if HAS_BIAS:
        y += tl.load(bias_ptr + col, mask=col < cols, other=0.0).to(ACC)[None, :]
    tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _layer_norm_bwd_kernel(grad_ptr, x_ptr, weight_ptr, dx_ptr, dweight_partial_ptr, dbias_partial_ptr, rows, cols,
                           eps, tiles_per_program, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
                           ACC: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr):
    program = tl.program_id(0)
    col = tl.arange(0, BLOCK_COLS)
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + col, mask=col < cols, other=0.0).to(ACC)[None, :]
    dweight = tl.zeros((BLOCK_ROWS, BLOCK_COLS), ACC)
    dbias = tl.zeros((BLOCK_ROWS, BLOCK_COLS), ACC)
    # The last program's run may reach past the last row: those tiles are fully masked and add nothing.
    for step in range(tiles_per_program):
        tile = program * tiles_per_program + step
        offsets, mask, x_hat, rstd = _normalized_tile(x_ptr, tile, rows, cols, eps, ACC, BLOCK_ROWS, BLOCK_COLS)
        dy = tl.load(grad_ptr + offsets, mask=mask, other=0.0).to(ACC)
        g = dy * weight if HAS_WEIGHT else dy
        g_mean = tl.sum(g, axis=1) / cols
        g_x_hat_mean = tl.sum(g * x_hat, axis=1) / cols
        dx = (g - g_mean[:, None] - x_hat * g_x_hat_mean[:, None]) * rstd[:, None]
        tl.store(dx_ptr + offsets, dx.to(dx_ptr.dtype.element_ty), mask=mask)
        if HAS_WEIGHT:
            dweight += dy * x_hat
        if HAS_BIAS:
            dbias += dy
    partial = program.to(tl.int64) * cols + col
    if HAS_WEIGHT:
        tl.store(dweight_partial_ptr + partial, tl.sum(dweight, axis=0), mask=col < cols)
    if HAS_BIAS:
        tl.store(dbias_partial_ptr + partial, tl.sum(dbias, axis=0), mask=col < cols)


def _accumulator(dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _launch(cols, tile_elements, elements_per_thread):
    """(rows per program, row width padded to a power of two, warps) for rows of ``cols`` elements."""
    block_cols = triton.next_power_of_2(cols)
    block_rows = max(1, tile_elements // block_cols)
    warps = max(1, min(16, block_rows * block_cols // (32 * elements_per_thread)))
    return block_rows, block_cols, warps


def _pointer(t, stand_in):
    """t made contiguous, or (for a missing optional tensor) a stand-in pointer the kernel never reads."""
    return stand_in if t is None else t.contiguous()


def layer_norm_fwd(x, weight, bias, eps, out_dtype):
    """LayerNorm of x over its last dim, in ``out_dtype``; weight and bias are (C,) or None."""
    x = x.contiguous()
    cols = x.shape[-1]
    rows = x.numel() // cols
    y = torch.empty(x.shape, device=x.device, dtype=out_dtype)
    if rows == 0:
        return y
    block_rows, block_cols, warps = _launch(cols, FWD_TILE, FWD_ELEMENTS_PER_THREAD)
    _layer_norm_fwd_kernel[(triton.cdiv(rows, block_rows), )](
        x, _pointer(weight, x), _pointer(bias, x), y, rows, cols, eps, HAS_WEIGHT=weight is not None,
        HAS_BIAS=bias is not None, ACC=_accumulator(x.dtype), BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols,
        num_warps=warps)
    return y


def _backward_programs(device):
    # The interpreter has no SMs; counting it as one keeps several tiles per program, as on a GPU.
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == 'cuda' else 1
    return sms * BWD_PROGRAMS_PER_SM


def layer_norm_bwd(grad, x, weight, bias, eps):
    """(dx, dweight, dbias) of :func:`layer_norm_fwd`; dweight (dbias) is an empty (0,) tensor where weight
    (bias) is None. ``bias`` is only read for its dtype."""
    x = x.contiguous()
    cols = x.shape[-1]
    rows = x.numel() // cols
    dx = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    block_rows, block_cols, warps = _launch(cols, BWD_TILE, BWD_ELEMENTS_PER_THREAD)
    tiles = triton.cdiv(rows, block_rows)
    tiles_per_program = triton.cdiv(tiles, _backward_programs(x.device))
    programs = triton.cdiv(tiles, tiles_per_program) if tiles else 0  # none without a tile of its own
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    partials = [None if t is None else torch.empty(programs, cols, device=x.device, dtype=acc) for t in (weight, bias)]
    if programs:
        _layer_norm_bwd_kernel[(programs, )](
            grad.contiguous(), x, _pointer(weight, x), dx, _pointer(partials[0], x), _pointer(partials[1], x), rows,
            cols, eps, tiles_per_program, HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None,
            ACC=_accumulator(x.dtype), BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols, num_warps=warps)
    grads = (x.new_empty(0) if t is None else partial.sum(0).to(t.dtype)
             for t, partial in zip((weight, bias), partials))
    return (dx, *grads)
