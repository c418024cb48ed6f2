"""The implicit attention of SS2D: how much each source position feeds one query position.

Unrolling the selective scan h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t, y_t = C_t·h_t gives, per
channel d of scan direction k,

    y_t = Σ_{s ≤ t} w_ts u_s,   w_ts = Σ_n C_t[n] exp(Σ_{s<r≤t} Δ_r[d] A[d, n]) Δ_s[d] B_s[n],

a causal attention matrix along the scan (the paper's (Q⊙w)(K/w)ᵀ with Q = C, K = B and the step
size Δ_s kept with the weight rather than the value). The skip term D·u_t is left out: it is not
mixing. Mapping each direction's source positions back onto the grid and summing the four
directions gives the whole SS2D mixing of channel d (cross-merge sums them).

The math is computed here from the module's parameters, in float64, and checked in the tests
against the kernels' selective scan.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import kernels


@dataclass
class ScanInputs:
    """Per-direction scan inputs of one image: sequences in scan order, length L = H * W."""

    u: torch.Tensor  # (K, D, L)
    delta: torch.Tensor  # (K, D, L), after softplus
    A: torch.Tensor  # (K, D, N)
    B: torch.Tensor  # (K, N, L)
    C: torch.Tensor  # (K, N, L)
    order: torch.Tensor  # (K, L): grid index (h * W + w) of sequence position l
    height: int
    width: int


def scan_order(height: int, width: int) -> torch.Tensor:
    """(4, H * W) long: the grid index each scan direction visits at each step (the kernels' cross_scan)."""
    grid = torch.arange(height * width, dtype=torch.float64).view(1, 1, height, width)
    return kernels.cross_scan(grid, backend='torch')[0, :, 0].round().long()


def scan_inputs(ssm: torch.nn.Module, u: torch.Tensor) -> ScanInputs:
    """The SSM inputs of an SS2D module for its scanned activation ``u`` (D, H, W) (after conv and SiLU)."""
    u = u.detach().double()
    inner, height, width = u.shape
    directions, _, rank = ssm.dt_proj_weight.shape
    state = (ssm.x_proj_weight.shape[1] - rank) // 2
    order = scan_order(height, width).to(u.device)
    xs = u.flatten(1)[:, order].transpose(0, 1)  # (K, D, L)
    x_dbl = torch.einsum('kcd,kdl->kcl', ssm.x_proj_weight.detach().double(), xs)
    dts, B, C = x_dbl.split([rank, state, state], dim=1)
    delta = torch.einsum('kdr,krl->kdl', ssm.dt_proj_weight.detach().double(), dts)
    delta = F.softplus(delta + ssm.dt_proj_bias.detach().double()[:, :, None])
    A = -torch.exp(ssm.A_log.detach().double()).view(directions, inner, state)
    return ScanInputs(xs, delta, A, B, C, order, height, width)


def attention_weights(inputs: ScanInputs, query: int) -> torch.Tensor:
    """w_ts of every channel for the query at grid index ``query``: (K, D, H, W), on the grid.

    Entry [k, d, h, w] is the weight with which direction k's scan carries u[d, h, w] into
    y[d] at the query (zero for positions the scan reaches after the query).
    """
    if not 0 <= query < inputs.height * inputs.width:
        raise IndexError(f'query index {query} is outside the {inputs.height}x{inputs.width} grid')
    directions, channels, length = inputs.u.shape
    # Σ_{r ≤ t} Δ_r A as a running sum; the decay from s to t is exp(S_t - S_s) ≤ 1 for s ≤ t.
    log_decay = torch.cumsum(inputs.delta[..., None] * inputs.A[:, :, None, :], dim=2)  # (K, D, L, N)
    steps = (inputs.order == query).int().argmax(dim=1)  # the query's position in each scan, (K,)
    index = torch.arange(directions, device=steps.device)
    query_log_decay = log_decay[index, :, steps]  # (K, D, N)
    query_C = inputs.C[index, :, steps]  # (K, N)
    decay = torch.exp(query_log_decay[:, :, None, :] - log_decay)  # (K, D, L, N)
    weights = torch.einsum('kn,kdln,knl->kdl', query_C, decay, inputs.B) * inputs.delta
    causal = torch.arange(length, device=steps.device)[None, :] <= steps[:, None]  # (K, L)
    weights = weights * causal[:, None, :]
    on_grid = torch.zeros_like(weights).scatter_(2, inputs.order[:, None, :].expand_as(weights), weights)
    return on_grid.view(directions, channels, inputs.height, inputs.width)


def direction_maps(weights: torch.Tensor) -> torch.Tensor:
    """(K + 1, H, W): per direction and for the merged sum, the channel mean of |w|."""
    merged = weights.sum(dim=0, keepdim=True)
    return torch.cat([weights, merged]).abs().mean(dim=1)
