"""Cross-scan and cross-merge in Triton; each is the other's backward.

A program owns a (channels x rows x cols) tile of the map and touches the four
scan orders of exactly those positions, so the map is read (or written) once.
Arbitrary input/output strides cover both the (B, D, H, W) and the
channels-last (B, H, W, D) layout without a transposing copy. A zero-size map
gives an empty grid, which launches nothing: its output is empty too.
"""
import torch
import triton
import triton.language as tl

from .triton_common import launchable

BLOCK_D, BLOCK_H, BLOCK_W = 16, 8, 16


@triton.jit
def _tile(channels, height, width, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """Channel, row and column indices of this program's tile, the mask, and the 4 sequence positions."""
    col_blocks = tl.cdiv(width, BLOCK_W)
    h = (tl.program_id(0) // col_blocks) * BLOCK_H + tl.arange(0, BLOCK_H)
    w = (tl.program_id(0) % col_blocks) * BLOCK_W + tl.arange(0, BLOCK_W)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d, h, w = d[:, None, None], h[None, :, None], w[None, None, :]
    mask = (d < channels) & (h < height) & (w < width)
    length = height * width
    row_major = h * width + w
    col_major = w * height + h
    return d, h, w, mask, (row_major, col_major, length - 1 - row_major, length - 1 - col_major)


@triton.jit
def _cross_scan_kernel(x_ptr, out_ptr, channels, height, width, stride_b, stride_d, stride_h, stride_w,
                       BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(2).to(tl.int64)
    d, h, w, mask, positions = _tile(channels, height, width, BLOCK_D, BLOCK_H, BLOCK_W)
    values = tl.load(x_ptr + batch * stride_b + d * stride_d + h * stride_h + w * stride_w, mask=mask)
    length = height * width
    rows = out_ptr + (batch * 4 * channels + d) * length  # (B, 4, D, L), direction k at offset k * D * L
    for k in tl.static_range(4):
        tl.store(rows + k * channels * length + positions[k], values, mask=mask)


@triton.jit
def _cross_merge_kernel(y_ptr, out_ptr, channels, height, width, stride_b, stride_d, stride_h, stride_w,
                        BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    batch = tl.program_id(2).to(tl.int64)
    d, h, w, mask, positions = _tile(channels, height, width, BLOCK_D, BLOCK_H, BLOCK_W)
    length = height * width
    rows = y_ptr + (batch * 4 * channels + d) * length
    total = tl.zeros((BLOCK_D, BLOCK_H, BLOCK_W), dtype=tl.float32)
    for k in tl.static_range(4):
        total += tl.load(rows + k * channels * length + positions[k], mask=mask).to(tl.float32)
    tl.store(out_ptr + batch * stride_b + d * stride_d + h * stride_h + w * stride_w, total, mask=mask)


def _grid(batch, channels, height, width):
    return (triton.cdiv(height, BLOCK_H) * triton.cdiv(width, BLOCK_W), triton.cdiv(channels, BLOCK_D), batch)


def _strides_bdhw(t, channels_last):
    """Strides of t in (batch, channel, row, col) order, whatever its memory layout."""
    return (t.stride(0), t.stride(3), t.stride(1), t.stride(2)) if channels_last else t.stride()


def cross_scan(x, channels_last=False):
    batch, channels, height, width = (x.shape[0], x.shape[3], x.shape[1], x.shape[2]) if channels_last else x.shape
    out = torch.empty(batch, 4, channels, height * width, device=x.device, dtype=x.dtype)
    grid = _grid(batch, channels, height, width)
    if launchable(grid):
        _cross_scan_kernel[grid](x, out, channels, height, width, *_strides_bdhw(x, channels_last),
                                 BLOCK_D=BLOCK_D, BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W)
    return out


def cross_merge(y, height, width, channels_last=False):
    batch, _, channels, _ = y.shape
    shape = (batch, height, width, channels) if channels_last else (batch, channels, height, width)
    out = torch.empty(shape, device=y.device, dtype=y.dtype)
    grid = _grid(batch, channels, height, width)
    if launchable(grid):
        _cross_merge_kernel[grid](y.contiguous(), out, channels, height, width, *_strides_bdhw(out, channels_last),
                                  BLOCK_D=BLOCK_D, BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W)
    return out
