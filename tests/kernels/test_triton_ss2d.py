"""The fused Triton SS2D op against a float64 oracle written from the math.

Without a GPU the kernels run in Triton's interpreter (conftest.py sets TRITON_INTERPRET=1), on tiny shapes.
On a GPU, run with TRITON_INTERPRET=0: the same checks then run natively, plus the VMamba-T stage shapes
(marked slow).
"""
import pytest
import torch
import torch.nn.functional as F

triton_ss2d = pytest.importorskip('kernels.triton_ss2d')

DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
GRAD_NAMES = ('x', 'x_proj_weight', 'dt_proj_weight', 'dt_proj_bias', 'A', 'D')
# The kernels' accuracy targets (fp32 rtol 6e-4 atol 2e-3; du 2x; dA/dD/ddelta_bias 1e-3; bf16 3e-2 / 5e-2)
FP32_TOL = dict(
    y=(6e-4, 2e-3), x=(1.2e-3, 4e-3), x_proj_weight=(6e-4, 2e-3), dt_proj_weight=(3e-3, 2e-2),
    dt_proj_bias=(1e-3, 1e-3), A=(1e-3, 1e-3), D=(1e-3, 1e-3))


def oracle(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last):
    """Cross-scan, projections, a per-step scan loop and cross-merge, written out plainly."""
    if channels_last:
        x = x.permute(0, 3, 1, 2)
    batch, dim, height, width = x.shape
    row_major = x.flatten(2)
    col_major = x.transpose(2, 3).flatten(2)
    xs = torch.stack([row_major, col_major, row_major.flip(-1), col_major.flip(-1)], 1)  # (B, 4, D, L)
    rank, d_state = dt_proj_weight.shape[-1], A.shape[-1]
    x_dbl = torch.einsum('bkdl,kcd->bkcl', xs, x_proj_weight)
    dts, Bs, Cs = torch.split(x_dbl, [rank, d_state, d_state], dim=2)
    delta = F.softplus(torch.einsum('bkrl,kdr->bkdl', dts, dt_proj_weight) + dt_proj_bias[None, :, :, None])
    A = A.view(4, dim, d_state)
    state = xs.new_zeros(batch, 4, dim, d_state)
    ys = []
    for step in range(height * width):
        dt_step = delta[..., step, None]
        state = torch.exp(dt_step * A) * state + dt_step * Bs[:, :, None, :, step] * xs[..., step, None]
        ys.append((state * Cs[:, :, None, :, step]).sum(-1))
    ys = torch.stack(ys, -1) + D.view(4, dim, 1) * xs
    by_rows = ys[:, 0] + ys[:, 2].flip(-1)
    by_cols = (ys[:, 1] + ys[:, 3].flip(-1)).view(batch, dim, width, height).transpose(2, 3)
    y = by_rows.view(batch, dim, height, width) + by_cols
    return y.permute(0, 2, 3, 1) if channels_last else y


def make_inputs(batch, dim, height, width, d_state, rank, channels_last, dtype=torch.float32):
    """Random inputs in VMamba's initialization ranges (Δ between 1e-3 and 0.1 at init, A = -exp(A_log))."""
    shape = (batch, height, width, dim) if channels_last else (batch, dim, height, width)
    x = torch.randn(shape, device=DEVICE).to(dtype)
    params = dict(
        x_proj_weight=torch.randn(4, rank + 2 * d_state, dim, device=DEVICE) / dim**0.5,
        dt_proj_weight=torch.randn(4, dim, rank, device=DEVICE) / rank**0.5,
        dt_proj_bias=torch.rand(4, dim, device=DEVICE) * 4 - 5,
        A=-torch.exp(torch.rand(4 * dim, d_state, device=DEVICE) * 2 - 1),
        D=torch.randn(4 * dim, device=DEVICE))
    return x, params


def run_fused(x, params, channels_last, grad_y, out_fp32=True):
    args = (params['x_proj_weight'], params['dt_proj_weight'], params['dt_proj_bias'], params['A'], params['D'])
    y, saved = triton_ss2d.ss2d_fwd(x, *args, channels_last, out_fp32)
    grads = triton_ss2d.ss2d_bwd(grad_y.to(y.dtype), x, *args, channels_last, saved)
    return y, dict(zip(GRAD_NAMES, grads))


def run_oracle(x, params, channels_last, grad_y, reference=oracle):
    leaves = {'x': x.detach().double().requires_grad_()}
    leaves.update({k: v.detach().double().requires_grad_() for k, v in params.items()})
    y = reference(*(leaves[name] for name in GRAD_NAMES), channels_last)
    y.backward(grad_y.double())
    return y.detach(), {name: leaf.grad for name, leaf in leaves.items()}


def assert_close(name, actual, expected, rtol, atol):
    assert actual.shape == expected.shape, name
    assert torch.isfinite(actual).all(), f'{name}: non-finite values'
    actual = actual.double()
    err = (actual - expected).abs() - rtol * expected.abs()
    assert err.max() <= atol, f'{name}: max excess error {err.max().item():.3g} (rtol {rtol}, atol {atol})'


def assert_close_in_norm(name, actual, expected, rtol):
    assert actual.shape == expected.shape, name
    assert torch.isfinite(actual).all(), f'{name}: non-finite values'
    err = (actual.double() - expected).norm() / expected.norm()
    assert err <= rtol, f'{name}: relative error {err.item():.3g} > {rtol}'


def check_against_oracle(batch, dim, height, width, d_state, rank, channels_last, dtype=torch.float32,
                         tolerances=FP32_TOL, reference=oracle):
    """tolerances: per output either (rtol, atol) elementwise or a single norm-relative bound."""
    x, params = make_inputs(batch, dim, height, width, d_state, rank, channels_last, dtype)
    grad_y = torch.randn(x.shape, device=DEVICE)
    y, grads = run_fused(x, params, channels_last, grad_y)
    y_ref, grads_ref = run_oracle(x, params, channels_last, grad_y, reference)
    assert y.dtype == torch.float32
    for name, actual, expected in [('y', y, y_ref)] + [(name, grads[name], grads_ref[name]) for name in GRAD_NAMES]:
        if name != 'y':
            assert actual.dtype == (x.dtype if name == 'x' else params[name].dtype), name
        if isinstance(tolerances[name], tuple):
            assert_close(name, actual, expected, *tolerances[name])
        else:
            assert_close_in_norm(name, actual, expected, tolerances[name])


# (batch, dim, height, width, d_state, rank, channels_last); L from 5 to 45 crosses the 16-step chunks.
SMALL_CASES = [
    (1, 3, 1, 5, 1, 2, True),
    (2, 5, 3, 4, 4, 3, False),
    (1, 8, 7, 7, 1, 1, True),
    (1, 6, 5, 9, 4, 2, False),
    (3, 4, 5, 4, 1, 2, True),  # several images in channels-last: the per-image products of the backward
]


@pytest.mark.parametrize('case', SMALL_CASES, ids=lambda c: 'B{}D{}H{}W{}N{}R{}{}'.format(
    *c[:6], 'cl' if c[6] else 'cf'))
def test_matches_float64_oracle(case):
    check_against_oracle(*case)


@pytest.mark.parametrize('min_programs_per_sm', [0, 10**6], ids=['widest-blocks', 'narrowest-blocks'])
def test_several_channel_blocks(monkeypatch, min_programs_per_sm):
    # 40 channels: the last block of each kernel is partly masked, and dB/dC add up across blocks; 2 images
    # and 33 positions cross chunk boundaries.
    monkeypatch.setattr(triton_ss2d, 'MIN_PROGRAMS_PER_SM', min_programs_per_sm)
    blocks = triton_ss2d.channel_blocks(2, 40, torch.device(DEVICE))
    assert max(blocks) < 40
    assert blocks == ((triton_ss2d.FWD_BLOCK_D, triton_ss2d.BWD_BLOCK_D) if min_programs_per_sm == 0 else
                      (triton_ss2d.FWD_MIN_BLOCK_D, triton_ss2d.BWD_MIN_BLOCK_D))
    check_against_oracle(2, 40, 3, 11, 1, 3, channels_last=True)


def test_small_grids_get_narrower_channel_blocks(monkeypatch):
    monkeypatch.setattr(triton_ss2d, '_multiprocessors', lambda device: 132)
    monkeypatch.setattr(triton_ss2d, 'MIN_PROGRAMS_PER_SM', 8)
    # VMamba-T stage 1 (96 channels): batch 128 fills 8 programs per SM already, batch 32 does not, and at
    # batch 2 both kernels stop at their narrowest block.
    assert triton_ss2d.channel_blocks(128, 96, torch.device('cuda')) == (32, 16)
    assert triton_ss2d.channel_blocks(32, 96, torch.device('cuda')) == (16, 8)
    assert triton_ss2d.channel_blocks(32, 384, torch.device('cuda')) == (32, 16)
    assert triton_ss2d.channel_blocks(2, 768, torch.device('cuda')) == (16, 8)


# (batch, dim, height, width, d_state, rank, channels_last, most segments): 3 to 5 chunks split into segments of one
# or two chunks, the last one shorter where they do not divide.
SEGMENT_CASES = [
    (1, 5, 7, 11, 1, 2, True, 3),
    (1, 4, 6, 8, 2, 2, False, 64),
    (1, 3, 1, 40, 1, 2, True, 2),
]


@pytest.mark.parametrize('case', SEGMENT_CASES, ids=lambda c: 'L{}-segments{}'.format(c[2] * c[3], c[7]))
def test_segment_parallel_scans_match_oracle(monkeypatch, case):
    *problem, most_segments = case
    batch, dim, height, width = problem[:4]
    monkeypatch.setattr(triton_ss2d, 'MIN_PROGRAMS_PER_SM', 10**6)
    monkeypatch.setattr(triton_ss2d, 'MIN_SEGMENT_CHUNKS', 1)
    monkeypatch.setattr(triton_ss2d, 'MAX_SEGMENTS', most_segments)
    plan = triton_ss2d.launch_plan(batch, dim, height * width, torch.device(DEVICE))
    n_chunks = -(-height * width // triton_ss2d.CHUNK)
    assert plan.fwd_segments == plan.bwd_segments == min(most_segments, n_chunks) > 1
    check_against_oracle(*problem)


def test_only_small_grids_are_split_into_segments(monkeypatch):
    monkeypatch.setattr(triton_ss2d, '_multiprocessors', lambda device: 132)
    monkeypatch.setattr(triton_ss2d, 'MIN_PROGRAMS_PER_SM', 8)
    cuda = torch.device('cuda')
    # VMamba-T stage 1 at batch 128 fills the GPU with whole walks: the kernels run as without segments.
    assert triton_ss2d.launch_plan(128, 96, 56 * 56, cuda) == (32, 1, 16, 1)
    # Detection, batch 2 at 800 x 1280: stage 1 has 48 forward programs of 16 channels, so 22 segments make the
    # 8 * 132 programs wanted; stage 4 (25 x 40 positions, 63 chunks) is too short to split.
    plan = triton_ss2d.launch_plan(2, 96, 200 * 320, cuda)
    assert (plan.fwd_block_d, plan.fwd_segments, plan.bwd_block_d) == (16, 22, 8)
    assert 4 * (96 // 8) * 2 * plan.bwd_segments >= 8 * 132
    assert triton_ss2d.launch_plan(2, 768, 25 * 40, cuda) == (16, 1, 8, 1)
    for dim, seq_len in [(96, 200 * 320), (192, 100 * 160), (384, 50 * 80), (768, 25 * 40), (96, 49)]:
        plan = triton_ss2d.launch_plan(2, dim, seq_len, cuda)
        n_chunks = -(-seq_len // triton_ss2d.CHUNK)
        for segments in (plan.fwd_segments, plan.bwd_segments):
            seg_chunks = -(-n_chunks // segments)
            assert 1 <= segments <= triton_ss2d.MAX_SEGMENTS
            assert (segments - 1) * seg_chunks < n_chunks  # no empty segment
            assert segments == 1 or seg_chunks >= triton_ss2d.MIN_SEGMENT_CHUNKS


@pytest.mark.parametrize('z_inline', [False, True], ids=['z-gemm', 'z-inline'])
@pytest.mark.parametrize('channels_last', [True, False], ids=['cl', 'cf'])
def test_both_ways_of_expanding_z_in_the_backward(monkeypatch, z_inline, channels_last):
    rank = 5
    monkeypatch.setattr(triton_ss2d, 'Z_INLINE_MAX_RANK', rank if z_inline else rank - 1)
    check_against_oracle(2, 6, 3, 7, 2, rank, channels_last)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
def test_half_precision_input_and_output(dtype):
    # fp32 weights with half activations: everything after reading x runs in fp32 (the projections too, as in
    # the torch backend), so only y and dx, rounded to the half dtype, are compared at half tolerance.
    x, params = make_inputs(1, 4, 3, 5, 2, 2, channels_last=True, dtype=dtype)
    grad_y = torch.randn(x.shape, device=DEVICE).to(dtype)  # the oracle sees the same rounded gradient
    y, grads = run_fused(x, params, True, grad_y, out_fp32=False)
    y_ref, grads_ref = run_oracle(x, params, True, grad_y)
    assert y.dtype == dtype and grads['x'].dtype == dtype
    assert_close('y', y, y_ref, 3e-2, 5e-2)
    assert_close('dx', grads['x'], grads_ref['x'], 3e-2, 5e-2)
    for name in GRAD_NAMES[1:]:
        assert_close(f'd{name}', grads[name], grads_ref[name], *FP32_TOL[name])


def test_half_input_runs_the_fp32_path():
    # Half x is upcast inside the op (the caller keeps only its half tensor for the backward): the result is the
    # fp32 input's up to the order of the fp32 atomics, with y and dx rounded to the half dtype.
    x, params = make_inputs(2, 6, 3, 5, 1, 2, channels_last=True, dtype=torch.bfloat16)
    grad_y = torch.randn(x.shape, device=DEVICE)
    y, grads = run_fused(x, params, True, grad_y)
    y32, grads32 = run_fused(x.float(), params, True, grad_y)
    torch.testing.assert_close(y, y32, rtol=1e-6, atol=1e-6)
    assert grads['x'].dtype == torch.bfloat16
    torch.testing.assert_close(grads['x'], grads32['x'].bfloat16(), rtol=1e-2, atol=1e-5)
    for name in GRAD_NAMES[1:]:
        torch.testing.assert_close(grads[name], grads32[name], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('divisor', [*range(1, 130), 255, 4095, 65537, (1 << 20) + 7, (1 << 30) + 3])
def test_division_magic_divides_every_31_bit_step_exactly(divisor):
    # The column-major walk divides each step by H this way; the worst cases sit next to multiples of the
    # divisor and at the top of the range.
    magic, shift = triton_ss2d._division_magic(divisor)
    top = (1 << 31) - 1
    multiples = {min(top, k * divisor) for k in (*range(0, 2000, 7), top // divisor, top // divisor - 1)}
    steps = {n + offset for n in multiples for offset in (-1, 0, 1) if 0 <= n + offset <= top} | {top}
    assert magic * top < 1 << 63  # the kernels multiply in int64
    for n in steps:
        assert (n * magic) >> shift == n // divisor, n


@pytest.mark.parametrize('channels_last', [False, True])
def test_saved_like_describes_what_the_forward_saves(channels_last):
    # torch.compile traces the fused op with these fakes; a mismatch would break the compiled backward.
    x, params = make_inputs(2, 5, 3, 4, 1, 2, channels_last=channels_last, dtype=torch.bfloat16)
    _, saved = triton_ss2d.ss2d_fwd(x, *params.values(), channels_last, True)
    fakes = triton_ss2d.ss2d_saved_like(x, *params.values(), channels_last)
    assert [(t.shape, t.dtype) for t in fakes] == [(t.shape, t.dtype) for t in saved]


def test_caller_autocast_does_not_reach_the_projections():
    # Autocast stays on inside a custom op; the op must still give what it gives without it. Not bit for bit:
    # y and dx merge the four directions with fp32 atomics in no fixed order, so two runs on a GPU differ in
    # the last bits of fp32; bf16 projections would differ by ~1e-3.
    x, params = make_inputs(1, 4, 3, 5, 1, 2, channels_last=True)
    grad_y = torch.randn(x.shape, device=DEVICE)
    y, grads = run_fused(x, params, True, grad_y)
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        y_autocast, grads_autocast = run_fused(x, params, True, grad_y)
    torch.testing.assert_close(y_autocast, y, rtol=1e-6, atol=1e-6)
    for name in GRAD_NAMES:
        torch.testing.assert_close(grads_autocast[name], grads[name], rtol=1e-6, atol=1e-6)


def test_the_op_rejects_mismatched_shapes_before_the_kernel_runs(monkeypatch):
    # Validation happens once, in kernels.ss2d; the kernel module trusts its caller.
    import kernels

    def must_not_run(*args):
        raise AssertionError('the kernel ran on inputs that should have been rejected')

    monkeypatch.setattr(triton_ss2d, 'ss2d_fwd', must_not_run)
    x, params = make_inputs(1, 4, 2, 3, 1, 1, channels_last=False)
    args = list(params.values())
    with pytest.raises(ValueError, match='x_proj_weight'):
        kernels.ss2d(x, params['x_proj_weight'][:, :-1], *args[1:], backend='triton')
    with pytest.raises(ValueError, match='x must have shape'):
        kernels.ss2d(x[0], *args, backend='triton')


@pytest.mark.slow
@pytest.mark.skipif(DEVICE != 'cuda', reason='VMamba-T stage shapes need a GPU')
@pytest.mark.parametrize('dim,size', [(96, 56), (192, 28), (384, 14), (768, 7)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_vmamba_tiny_stage_shapes(dim, size, dtype):
    """Against the torch backend in float64 (the per-step oracle is too slow at L = 3136)."""
    import kernels

    def torch_reference(*args):
        return kernels.ss2d(*args, backend='torch')

    rank = -(-dim // 16)
    # bf16 inputs: bf16 projections round each term, so long sums are compared in norm.
    tolerances = FP32_TOL if dtype == torch.float32 else dict.fromkeys(FP32_TOL, 2e-2)
    for channels_last in (True, False):
        check_against_oracle(2, dim, size, size, 1, rank, channels_last, dtype, tolerances, torch_reference)


@pytest.mark.slow
@pytest.mark.skipif(DEVICE != 'cuda', reason='detection-sized maps need a GPU')
@pytest.mark.parametrize('dim,height,width', [(96, 200, 320), (384, 50, 80)])
def test_detection_sized_maps_run_in_segments(dim, height, width):
    """Mask R-CNN's input (batch 2, 800 x 1280) at VMamba-T's first and third stage, where the launch splits each
    direction into segments, against the torch backend in float64."""
    import kernels
    plan = triton_ss2d.launch_plan(2, dim, height * width, torch.device(DEVICE))
    assert plan.fwd_segments > 1 and plan.bwd_segments > 1
    check_against_oracle(2, dim, height, width, 1, -(-dim // 16), True,
                         reference=lambda *args: kernels.ss2d(*args, backend='torch'))
