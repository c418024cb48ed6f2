"""The public SS2D ops: validation, backend choice, and one autograd seam per op.

Each op (and each backward) is a ``torch.library.custom_op`` with a fake
implementation, so ``torch.compile`` traces through it without graph breaks
and autograd sees exactly one node per op whatever backend runs inside. The
backend is resolved in the Python wrapper and passed to the op as a string.
"""
import functools
import importlib.util
from types import SimpleNamespace
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from . import checks, reference, unfused_ss2d
from .dispatch import resolve_backend

_NAMESPACE = 'vmamba_kernels'


def _triton_prims():
    from . import triton_cross_scan, triton_selective_scan
    return SimpleNamespace(cross_scan=triton_cross_scan.cross_scan, cross_merge=triton_cross_scan.cross_merge,
                           selective_scan=triton_selective_scan.selective_scan,
                           selective_scan_backward=triton_selective_scan.selective_scan_backward)


def _prims(backend):
    return reference if backend == 'torch' else _triton_prims()


@functools.cache
def _fused_ss2d():
    """The fused triton ss2d module, or None where it does not exist (imported once, on first use)."""
    if importlib.util.find_spec(f'{__package__}.triton_ss2d') is None:
        return None
    from . import triton_ss2d
    return triton_ss2d


def _image_size(x, channels_last):
    return (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])


# ---------------------------------------------------------------- cross_scan / cross_merge
@torch.library.custom_op(f'{_NAMESPACE}::cross_scan', mutates_args=())
def _cross_scan(x: Tensor, channels_last: bool, backend: str) -> Tensor:
    return _prims(backend).cross_scan(x, channels_last)


@_cross_scan.register_fake
def _(x, channels_last, backend):
    height, width = _image_size(x, channels_last)
    channels = x.shape[3] if channels_last else x.shape[1]
    return x.new_empty(x.shape[0], 4, channels, height * width)


@torch.library.custom_op(f'{_NAMESPACE}::cross_merge', mutates_args=())
def _cross_merge(y: Tensor, height: int, width: int, channels_last: bool, backend: str) -> Tensor:
    return _prims(backend).cross_merge(y, height, width, channels_last)


@_cross_merge.register_fake
def _(y, height, width, channels_last, backend):
    batch, _, channels, _ = y.shape
    shape = (batch, height, width, channels) if channels_last else (batch, channels, height, width)
    return y.new_empty(shape)


def _cross_scan_setup(ctx, inputs, output):
    x, ctx.channels_last, ctx.backend = inputs
    ctx.height, ctx.width = _image_size(x, ctx.channels_last)


def _cross_scan_backward(ctx, grad):
    return _cross_merge(grad, ctx.height, ctx.width, ctx.channels_last, ctx.backend), None, None


def _cross_merge_setup(ctx, inputs, output):
    _, _, _, ctx.channels_last, ctx.backend = inputs


def _cross_merge_backward(ctx, grad):
    return _cross_scan(grad, ctx.channels_last, ctx.backend), None, None, None, None


_cross_scan.register_autograd(_cross_scan_backward, setup_context=_cross_scan_setup)
_cross_merge.register_autograd(_cross_merge_backward, setup_context=_cross_merge_setup)


# ---------------------------------------------------------------- selective_scan
@torch.library.custom_op(f'{_NAMESPACE}::selective_scan', mutates_args=())
def _selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                    delta_bias: Optional[Tensor], delta_softplus: bool, out_fp32: bool, backend: str) -> Tensor:
    return _prims(backend).selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32)


@_selective_scan.register_fake
def _(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32, backend):
    return u.new_empty(u.shape, dtype=reference.output_dtype(u.dtype, out_fp32))


@torch.library.custom_op(f'{_NAMESPACE}::selective_scan_backward', mutates_args=())
def _selective_scan_backward(grad: Tensor, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                             D: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
                             backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    return tuple(_prims(backend).selective_scan_backward(grad, u, delta, A, B, C, D, delta_bias, delta_softplus))


@_selective_scan_backward.register_fake
def _(grad, u, delta, A, B, C, D, delta_bias, delta_softplus, backend):
    vector = A.new_empty(A.shape[0])
    return (torch.empty_like(u), torch.empty_like(delta), torch.empty_like(A), torch.empty_like(B),
            torch.empty_like(C), vector if D is None else torch.empty_like(D),
            vector.clone() if delta_bias is None else torch.empty_like(delta_bias))


def _selective_scan_setup(ctx, inputs, output):
    u, delta, A, B, C, D, delta_bias, ctx.delta_softplus, _, ctx.backend = inputs
    ctx.has_D, ctx.has_delta_bias = D is not None, delta_bias is not None
    ctx.save_for_backward(u, delta, A, B, C, D, delta_bias)


def _selective_scan_autograd(ctx, grad):
    du, ddelta, dA, dB, dC, dD, ddelta_bias = _selective_scan_backward(
        grad, *ctx.saved_tensors, ctx.delta_softplus, ctx.backend)
    return (du, ddelta, dA, dB, dC, dD if ctx.has_D else None, ddelta_bias if ctx.has_delta_bias else None,
            None, None, None)


_selective_scan.register_autograd(_selective_scan_autograd, setup_context=_selective_scan_setup)


# ---------------------------------------------------------------- ss2d
# Two seams: ``ss2d`` (torch backend, the unfused triton pipeline, or a fused
# kernel whose backward re-runs its forward) and ``ss2d_fused``, which also
# returns the fused kernel's saved tensors (x_dbl, chunk-start states) so the
# backward does not recompute them. The latter needs the fake implementation to
# know their shapes, which the kernel module provides as ``ss2d_saved_like``.
@torch.compiler.assume_constant_result
def _fused_saves_for_backward() -> bool:
    fused = _fused_ss2d()
    return fused is not None and hasattr(fused, 'ss2d_saved_like')


@torch.library.custom_op(f'{_NAMESPACE}::ss2d', mutates_args=())
def _ss2d(x: Tensor, x_proj_weight: Tensor, dt_proj_weight: Tensor, dt_proj_bias: Tensor, A: Tensor, D: Tensor,
          channels_last: bool, out_fp32: bool, backend: str) -> Tensor:
    inputs = (x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32)
    fused = _fused_ss2d() if backend == 'triton' else None
    if fused is None:
        return unfused_ss2d.ss2d_forward(_prims(backend), *inputs)
    return fused.ss2d_fwd(*inputs)[0]


@_ss2d.register_fake
def _(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32, backend):
    return x.new_empty(x.shape, dtype=reference.output_dtype(x.dtype, out_fp32))


@torch.library.custom_op(f'{_NAMESPACE}::ss2d_backward', mutates_args=())
def _ss2d_backward(grad: Tensor, x: Tensor, x_proj_weight: Tensor, dt_proj_weight: Tensor, dt_proj_bias: Tensor,
                   A: Tensor, D: Tensor, channels_last: bool,
                   backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    inputs = (x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last)
    fused = _fused_ss2d() if backend == 'triton' else None
    if fused is None:
        return tuple(unfused_ss2d.ss2d_backward(_prims(backend), grad, *inputs))
    _, saved = fused.ss2d_fwd(*inputs, True)
    return tuple(fused.ss2d_bwd(grad, *inputs, saved))


def _ss2d_grads_like(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D):
    return tuple(torch.empty_like(t) for t in (x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D))


@_ss2d_backward.register_fake
def _(grad, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, backend):
    return _ss2d_grads_like(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D)


def _ss2d_setup(ctx, inputs, output):
    *tensors, ctx.channels_last, _, ctx.backend = inputs
    ctx.save_for_backward(*tensors)


def _ss2d_autograd(ctx, grad):
    return (*_ss2d_backward(grad, *ctx.saved_tensors, ctx.channels_last, ctx.backend), None, None, None)


_ss2d.register_autograd(_ss2d_autograd, setup_context=_ss2d_setup)


@torch.library.custom_op(f'{_NAMESPACE}::ss2d_fused', mutates_args=())
def _ss2d_fused(x: Tensor, x_proj_weight: Tensor, dt_proj_weight: Tensor, dt_proj_bias: Tensor, A: Tensor,
                D: Tensor, channels_last: bool, out_fp32: bool) -> list[Tensor]:
    """[y, *saved] from the fused kernel."""
    y, saved = _fused_ss2d().ss2d_fwd(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32)
    return [y, *saved]


@_ss2d_fused.register_fake
def _(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32):
    y = x.new_empty(x.shape, dtype=reference.output_dtype(x.dtype, out_fp32))
    saved = _fused_ss2d().ss2d_saved_like(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last)
    return [y, *saved]


@torch.library.custom_op(f'{_NAMESPACE}::ss2d_fused_backward', mutates_args=())
def _ss2d_fused_backward(grad: Tensor, x: Tensor, x_proj_weight: Tensor, dt_proj_weight: Tensor,
                         dt_proj_bias: Tensor, A: Tensor, D: Tensor, saved: list[Tensor],
                         channels_last: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    return tuple(_fused_ss2d().ss2d_bwd(grad, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last,
                                        tuple(saved)))


@_ss2d_fused_backward.register_fake
def _(grad, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, saved, channels_last):
    return _ss2d_grads_like(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D)


def _ss2d_fused_setup(ctx, inputs, output):
    *tensors, ctx.channels_last, _ = inputs
    ctx.num_inputs = len(tensors)
    ctx.mark_non_differentiable(*output[1:])
    ctx.save_for_backward(*tensors, *output[1:])


def _ss2d_fused_autograd(ctx, grads):
    inputs, saved = ctx.saved_tensors[:ctx.num_inputs], ctx.saved_tensors[ctx.num_inputs:]
    return (*_ss2d_fused_backward(grads[0], *inputs, list(saved), ctx.channels_last), None, None)


_ss2d_fused.register_autograd(_ss2d_fused_autograd, setup_context=_ss2d_fused_setup)


# ---------------------------------------------------------------- layer_norm
# Only the triton backend is a custom op. The torch backend is F.layer_norm itself, which autograd, autocast,
# torch.compile, the FLOP counter and ONNX export already know.
def _triton_layer_norm():
    from . import triton_layer_norm
    return triton_layer_norm


@torch.library.custom_op(f'{_NAMESPACE}::layer_norm', mutates_args=())
def _layer_norm(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float,
                out_dtype: torch.dtype) -> Tensor:
    # The caller's autocast is still on in here; the dtypes are the arguments' (out_dtype is decided outside).
    with torch.autocast(x.device.type, enabled=False):
        return _triton_layer_norm().layer_norm_fwd(x, weight, bias, eps, out_dtype)


@_layer_norm.register_fake
def _(x, weight, bias, eps, out_dtype):
    return x.new_empty(x.shape, dtype=out_dtype)


@torch.library.custom_op(f'{_NAMESPACE}::layer_norm_backward', mutates_args=())
def _layer_norm_backward(grad: Tensor, x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                         eps: float) -> tuple[Tensor, Tensor, Tensor]:
    with torch.autocast(x.device.type, enabled=False):
        return _triton_layer_norm().layer_norm_bwd(grad, x, weight, bias, eps)


@_layer_norm_backward.register_fake
def _(grad, x, weight, bias, eps):
    return tuple(x.new_empty(0) if t is None else t.new_empty(t.shape) for t in (x, weight, bias))


def _layer_norm_setup(ctx, inputs, output):
    x, weight, bias, ctx.eps, _ = inputs
    ctx.save_for_backward(x, weight, bias)


def _layer_norm_autograd(ctx, grad):
    x, weight, bias = ctx.saved_tensors
    dx, dweight, dbias = _layer_norm_backward(grad, x, weight, bias, ctx.eps)
    return dx, None if weight is None else dweight, None if bias is None else dbias, None, None


_layer_norm.register_autograd(_layer_norm_autograd, setup_context=_layer_norm_setup)

# Devices whose autocast runs layer_norm in fp32 (it is on CUDA's fp32 list; CPU autocast leaves it alone).
_AUTOCAST_FP32_LAYER_NORM_DEVICES = ('cuda', )


def _layer_norm_output_dtype(x):
    """The dtype F.layer_norm returns for x in the caller's context: fp32 under CUDA autocast (float64 stays),
    else x.dtype (torch also keeps a half x's dtype with fp32 weight and bias)."""
    fp32_autocast = torch.is_autocast_enabled(x.device.type) and x.device.type in _AUTOCAST_FP32_LAYER_NORM_DEVICES
    return torch.float32 if fp32_autocast and x.dtype != torch.float64 else x.dtype


def _check_layer_norm(x, weight, bias, eps):
    op = 'layer_norm'
    if not isinstance(x, Tensor):
        raise TypeError(f'{op}: x must be a torch.Tensor, got {type(x).__name__}')
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f'{op}: x must have shape (..., C) with C >= 1 (normalized over its last dim), '
                         f'got {tuple(x.shape)}')
    if not x.is_floating_point():
        raise TypeError(f'{op}: x must be a floating-point tensor, got {x.dtype}')
    channels = x.shape[-1]
    for name, vector in (('weight', weight), ('bias', bias)):
        if vector is not None:
            checks._check_tensor(op, name, vector, 1, f'(C,) = ({channels},)')
            checks._check_shape(op, name, vector, (channels, ), '(C,)')
    if not eps >= 0:
        raise ValueError(f'{op}: eps must be a non-negative number, got {eps}')
    checks._check_same_device(op, x=x, weight=weight, bias=bias)


# ---------------------------------------------------------------- public API
def cross_scan(x: Tensor, channels_last: bool = False, backend: Optional[str] = None) -> Tensor:
    """(B, D, H, W), or (B, H, W, D) when ``channels_last`` -> (B, 4, D, H * W).

    Direction 0 is row-major (l = h * W + w), 1 column-major (l = w * H + h),
    2 and 3 are 0 and 1 reversed.
    """
    checks.check_cross_scan(x, channels_last)
    return _cross_scan(x, channels_last, resolve_backend(backend, x.device))


def cross_merge(y: Tensor, height: int, width: int, channels_last: bool = False,
                backend: Optional[str] = None) -> Tensor:
    """(B, 4, D, height * width) -> (B, D, H, W) (or (B, H, W, D)): the adjoint of :func:`cross_scan`."""
    checks.check_cross_merge(y, height, width)
    return _cross_merge(y, height, width, channels_last, resolve_backend(backend, y.device))


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                   delta_bias: Optional[Tensor] = None, delta_softplus: bool = True, out_fp32: bool = True,
                   backend: Optional[str] = None) -> Tensor:
    """Selective scan over (batch, K * D, L) with B, C (batch, K, N, L) shared per group of D channels.

    h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t, y_t = C_t . h_t + D u_t, where
    delta = softplus(delta + delta_bias) when ``delta_softplus``. The state is
    fp32 (fp64 for fp64 inputs); the output is that dtype when ``out_fp32``,
    else u.dtype.
    """
    checks.check_selective_scan(u, delta, A, B, C, D, delta_bias)
    return _selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32,
                           resolve_backend(backend, u.device))


def ss2d(x: Tensor, x_proj_weight: Tensor, dt_proj_weight: Tensor, dt_proj_bias: Tensor, A: Tensor, D: Tensor,
         channels_last: bool = False, out_fp32: bool = True, backend: Optional[str] = None) -> Tensor:
    """The SS2D core: cross_scan, per-direction projections, selective_scan, cross_merge.

    x (B, D, H, W) (or (B, H, W, D)), x_proj_weight (4, R + 2N, D), dt_proj_weight
    (4, D, R), dt_proj_bias (4, D), A (4 * D, N), D (4 * D,). Returns x's shape,
    fp32 when ``out_fp32`` else x.dtype.
    """
    checks.check_ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last)
    backend = resolve_backend(backend, x.device)
    if backend == 'triton' and _fused_saves_for_backward():
        return _ss2d_fused(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32)[0]
    return _ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32, backend)


def layer_norm(x: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, eps: float = 1e-5,
               backend: Optional[str] = None) -> Tensor:
    """``F.layer_norm(x, x.shape[-1:], weight, bias, eps)``: x (..., C), weight and bias (C,) or None.

    Statistics in fp32 (fp64 for fp64 x), biased variance. The output dtype is F.layer_norm's in the
    caller's context: fp32 under CUDA autocast, else x.dtype. The triton backend reads a half x as it is
    (no fp32 copy) and handles C up to ``kernels.triton_layer_norm.MAX_COLUMNS``.
    """
    _check_layer_norm(x, weight, bias, eps)
    if resolve_backend(backend, x.device) == 'torch':
        return F.layer_norm(x, x.shape[-1:], weight, bias, eps)
    max_columns = _triton_layer_norm().MAX_COLUMNS
    if x.shape[-1] > max_columns:
        raise ValueError(f"layer_norm: the triton backend normalizes rows of at most {max_columns} elements, "
                         f"got C = {x.shape[-1]}; pass backend='torch'")
    return _layer_norm(x.contiguous(), weight, bias, float(eps), _layer_norm_output_dtype(x))
