"""Triton helpers shared by the kernels: the scan combines, softplus, and the empty-grid guard.

The selective scan (``triton_selective_scan.py``) and the fused SS2D core (``triton_ss2d.py``) run the same
recurrence h_t = a_t h_{t-1} + b_t forwards and its adjoint g_t = c_t + a_{t+1} g_{t+1} backwards, both as
``tl.associative_scan`` over a chunk of positions, and both turn the pre-activation step into
Δ = softplus(z). One copy of each here keeps their numerics identical.
"""
import triton
import triton.language as tl
from triton.language.extra.cuda import libdevice

# Both are constexpr because a jitted function reads no other globals.
# softplus(z) is z itself above this, as in torch.nn.functional.softplus (exp(z) would overflow soon after).
SOFTPLUS_THRESHOLD = tl.constexpr(20.0)
# Below this, log(1 + e^z) is replaced by its series e^z (1 - e^z / 2): log(1 + e) rounds 1 + e and loses
# the relative precision of small steps, while the series' next term, e^3 / 3, is under 1e-5 of e^z here.
SOFTPLUS_SERIES_BELOW = tl.constexpr(-5.0)


@triton.jit
def affine_combine(decay_early, value_early, decay_late, value_late):
    """Compose h -> decay_early h + value_early, then h -> decay_late h + value_late.

    Scanned forwards over (decay_t, value_t) it gives (prod_{s<=t} decay_s, h_t from h_{-1} = 0); the
    caller adds the carried state times the cumulative decay.
    """
    return decay_early * decay_late, decay_late * value_early + value_late


@triton.jit
def adjoint_combine(mult_late, add_late, first_decay_late, mult_early, add_early, first_decay_early):
    """Compose segments of the adjoint recurrence g_t = c_t + a_{t+1} g_{t+1}, scanned from the end.

    A segment [s, e] maps the adjoint entering it from the right to g_s = add + mult * (a_{e+1} g_{e+1}); it
    also carries its own first decay a_s, the factor its left neighbour needs, which spares a shifted load
    of a_{t+1}. Scan (1, c_t, a_t) with ``reverse=True``.
    """
    joint = mult_early * first_decay_late
    return joint * mult_late, add_early + joint * add_late, first_decay_early


@triton.jit
def softplus_and_sigmoid(z, FAST_MATH: tl.constexpr):
    """(softplus(z), sigmoid(z)), in fp32: the step Δ and its derivative dΔ/dz.

    With ``FAST_MATH`` the log and the division are the hardware's approximate ones (one special-function
    instruction each, accurate to a few ulp on these ranges: the log of 1 + e^z >= 1, a quotient in (0, 1)).
    The interpreter has no libdevice, so callers pass ``FAST_MATH`` only when compiling. A kernel that needs
    only one of the two results gets the other removed at compile time.
    """
    e = tl.exp(tl.minimum(z, SOFTPLUS_THRESHOLD))
    if FAST_MATH:
        log_1pe = libdevice.fast_logf(1.0 + e)
        sigmoid = libdevice.fast_dividef(e, 1.0 + e)
    else:
        log_1pe = tl.log(1.0 + e)
        sigmoid = e / (1.0 + e)
    softplus = tl.where(z > SOFTPLUS_THRESHOLD, z, tl.where(z < SOFTPLUS_SERIES_BELOW, e * (1.0 - 0.5 * e), log_1pe))
    return softplus, tl.where(z > SOFTPLUS_THRESHOLD, 1.0, sigmoid)


def launchable(grid) -> bool:
    """Whether a grid has programs to run: zero-size problems give empty grids, which launch nothing."""
    return all(size > 0 for size in grid)
