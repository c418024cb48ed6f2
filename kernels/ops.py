"""The public SS2D ops: validation, backend choice, and one autograd seam per op.

Each op is a ``torch.library.custom_op`` with a fake implementation and a registered autograd formula whose
backward is a custom op too (cross_scan and cross_merge are each other's), so ``torch.compile`` traces
through them without graph breaks and autograd sees one node per op whatever backend runs inside. The
public functions at the end validate their inputs once, resolve the backend, and pass it to the op as a
string; the ops run ``reference.py`` for 'torch' and the op's ``triton_*.py`` module for 'triton'.
"""
from typing import Optional

import torch
from torch import Tensor

from . import checks, reference
from .dispatch import resolve_backend

_NAMESPACE = 'vmamba_kernels'


# The Triton modules are imported on first use: importing triton is slow, and only the triton backend needs it.
def _triton_cross_scan():
    from . import triton_cross_scan
    return triton_cross_scan


def _triton_selective_scan():
    from . import triton_selective_scan
    return triton_selective_scan


def _triton_ss2d():
    from . import triton_ss2d
    return triton_ss2d


def _image_size(x, channels_last):
    return (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])


# ---------------------------------------------------------------- cross_scan / cross_merge
def _cross_ops(backend):
    return reference if backend == 'torch' else _triton_cross_scan()


@torch.library.custom_op(f'{_NAMESPACE}::cross_scan', mutates_args=())
def _cross_scan(x: Tensor, channels_last: bool, backend: str) -> Tensor:
    return _cross_ops(backend).cross_scan(x, channels_last)


@_cross_scan.register_fake
def _(x, channels_last, backend):
    height, width = _image_size(x, channels_last)
    channels = x.shape[3] if channels_last else x.shape[1]
    return x.new_empty(x.shape[0], 4, channels, height * width)


@torch.library.custom_op(f'{_NAMESPACE}::cross_merge', mutates_args=())
def _cross_merge(y: Tensor, height: int, width: int, channels_last: bool, backend: str) -> Tensor:
    return _cross_ops(backend).cross_merge(y, height, width, channels_last)


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
def _scan_ops(backend):
    return reference if backend == 'torch' else _triton_selective_scan()


@torch.library.custom_op(f'{_NAMESPACE}::selective_scan', mutates_args=())
def _selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                    delta_bias: Optional[Tensor], delta_softplus: bool, out_fp32: bool, backend: str) -> Tensor:
    return _scan_ops(backend).selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32)


@_selective_scan.register_fake
def _(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32, backend):
    return u.new_empty(u.shape, dtype=reference.output_dtype(u.dtype, out_fp32))


@torch.library.custom_op(f'{_NAMESPACE}::selective_scan_backward', mutates_args=())
def _selective_scan_backward(grad: Tensor, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                             D: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
                             backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    return tuple(_scan_ops(backend).selective_scan_backward(grad, u, delta, A, B, C, D, delta_bias, delta_softplus))


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
# The op returns [y, *saved]: saved is what the backend's backward reads besides the inputs. The torch backend
# keeps nothing (its backward recomputes the forward); the fused Triton kernel keeps x_dbl and the chunk-start
# states, so its backward re-runs neither the projections nor the forward scan.
@torch.library.custom_op(f'{_NAMESPACE}::ss2d', mutates_args=())
def _ss2d(x: Tensor, x_proj_weight: Tensor, dt_proj_weight: Tensor, dt_proj_bias: Tensor, A: Tensor, D: Tensor,
          channels_last: bool, out_fp32: bool, backend: str) -> list[Tensor]:
    inputs = (x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32)
    if backend == 'torch':
        return [reference.ss2d(*inputs)]
    y, saved = _triton_ss2d().ss2d_fwd(*inputs)
    return [y, *saved]


@_ss2d.register_fake
def _(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32, backend):
    y = x.new_empty(x.shape, dtype=reference.output_dtype(x.dtype, out_fp32))
    if backend == 'torch':
        return [y]
    return [y, *_triton_ss2d().ss2d_saved_like(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last)]


@torch.library.custom_op(f'{_NAMESPACE}::ss2d_backward', mutates_args=())
def _ss2d_backward(grad: Tensor, x: Tensor, x_proj_weight: Tensor, dt_proj_weight: Tensor, dt_proj_bias: Tensor,
                   A: Tensor, D: Tensor, saved: list[Tensor], channels_last: bool,
                   backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    inputs = (x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last)
    if backend == 'torch':
        return tuple(reference.ss2d_backward(grad, *inputs))
    return tuple(_triton_ss2d().ss2d_bwd(grad, *inputs, tuple(saved)))


@_ss2d_backward.register_fake
def _(grad, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, saved, channels_last, backend):
    return tuple(torch.empty_like(t) for t in (x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D))


def _ss2d_setup(ctx, inputs, output):
    *tensors, ctx.channels_last, _, ctx.backend = inputs
    ctx.num_inputs = len(tensors)
    ctx.mark_non_differentiable(*output[1:])
    ctx.save_for_backward(*tensors, *output[1:])


def _ss2d_autograd(ctx, grads):
    tensors = ctx.saved_tensors  # once: unpacking twice breaks activation checkpointing
    inputs, saved = tensors[:ctx.num_inputs], tensors[ctx.num_inputs:]
    return (*_ss2d_backward(grads[0], *inputs, list(saved), ctx.channels_last, ctx.backend), None, None, None)


_ss2d.register_autograd(_ss2d_autograd, setup_context=_ss2d_setup)


# ---------------------------------------------------------------- export
def _cross_scan_decomposed(x, channels_last, backend):
    return reference.cross_scan(x, channels_last)


def _cross_merge_decomposed(y, height, width, channels_last, backend):
    return reference.cross_merge(y, height, width, channels_last)


def _selective_scan_decomposed(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32, backend):
    return reference.selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32)


def _ss2d_decomposed(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32, backend):
    if backend != 'torch':
        raise ValueError(f"kernels.reference_decompositions: ss2d was traced with the {backend!r} backend, whose "
                         "output also holds the tensors its backward keeps; trace the model with CPU tensors or "
                         "after kernels.set_backend('torch')")
    return [reference.ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32)]


def reference_decompositions() -> dict:
    """The forward custom ops mapped to their plain torch reference, for ``ExportedProgram.run_decompositions``.

    ``torch.export`` keeps the ops as opaque ``vmamba_kernels`` nodes that ONNX runtimes do not know; with this
    table they become standard aten ops (cross-scan, chunked parallel scan, cross-merge), whatever backend the
    program was traced with, except that ss2d must have been traced with the torch backend (CPU tensors, or
    ``set_backend('torch')``). The backward ops are left out: an exported inference program has none.
    """
    ops = torch.ops.vmamba_kernels
    return {
        ops.cross_scan.default: _cross_scan_decomposed,
        ops.cross_merge.default: _cross_merge_decomposed,
        ops.selective_scan.default: _selective_scan_decomposed,
        ops.ss2d.default: _ss2d_decomposed,
    }


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
    return _ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32,
                 resolve_backend(backend, x.device))[0]
