"""SS2D composed from the primitive ops, forward and backward.

This is the torch backend's ss2d, and the triton backend's until a fused kernel
is available. ``prims`` is any namespace with ``cross_scan``, ``cross_merge``,
``selective_scan`` and ``selective_scan_backward`` (the reference module or the
triton wrappers), so both backends share one composition.
"""
import torch


def _project(prims, x, x_proj_weight, dt_proj_weight, channels_last):
    """Scan x and apply the per-direction projections; returns (xs, dts, B, C, delta)."""
    rank = dt_proj_weight.shape[2]
    state = (x_proj_weight.shape[1] - rank) // 2
    xs = prims.cross_scan(x, channels_last)
    dtype = torch.promote_types(x.dtype, x_proj_weight.dtype)
    x_dbl = torch.einsum('kcd,bkdl->bkcl', x_proj_weight.to(dtype), xs.to(dtype))
    dts, B, C = x_dbl.split([rank, state, state], dim=2)
    delta = torch.einsum('kdr,bkrl->bkdl', dt_proj_weight.to(dtype), dts)
    return xs, dts, B.contiguous(), C.contiguous(), delta


def ss2d_forward(prims, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32):
    height, width = (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])
    xs, _, B, C, delta = _project(prims, x, x_proj_weight, dt_proj_weight, channels_last)
    y = prims.selective_scan(xs.flatten(1, 2), delta.flatten(1, 2), A, B, C, D,
                             dt_proj_bias.flatten(), True, out_fp32)
    return prims.cross_merge(y.unflatten(1, (4, -1)), height, width, channels_last)


def ss2d_backward(prims, grad_out, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last):
    """Returns (dx, dx_proj_weight, ddt_proj_weight, ddt_proj_bias, dA, dD)."""
    height, width = (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])
    xs, dts, B, C, delta = _project(prims, x, x_proj_weight, dt_proj_weight, channels_last)
    grad_y = prims.cross_scan(grad_out, channels_last)  # cross_scan is cross_merge's adjoint
    du, ddelta, dA, dB, dC, dD, ddt_bias = prims.selective_scan_backward(
        grad_y.flatten(1, 2), xs.flatten(1, 2), delta.flatten(1, 2), A, B, C, D, dt_proj_bias.flatten(), True)
    ddelta = ddelta.unflatten(1, (4, -1))
    ddts = torch.einsum('kdr,bkdl->bkrl', dt_proj_weight.to(ddelta.dtype), ddelta)
    ddt_proj_weight = torch.einsum('bkdl,bkrl->kdr', ddelta, dts.to(ddelta.dtype))
    dx_dbl = torch.cat([ddts, dB.to(ddts.dtype), dC.to(ddts.dtype)], dim=2)
    dx_proj_weight = torch.einsum('bkcl,bkdl->kcd', dx_dbl, xs.to(dx_dbl.dtype))
    dxs = du.unflatten(1, (4, -1)).to(dx_dbl.dtype) + torch.einsum(
        'kcd,bkcl->bkdl', x_proj_weight.to(dx_dbl.dtype), dx_dbl)
    dx = prims.cross_merge(dxs, height, width, channels_last)
    return (dx.to(x.dtype), dx_proj_weight.to(x_proj_weight.dtype), ddt_proj_weight.to(dt_proj_weight.dtype),
            ddt_bias.view_as(dt_proj_bias).to(dt_proj_bias.dtype), dA, dD)
