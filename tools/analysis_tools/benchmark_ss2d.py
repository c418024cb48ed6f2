"""Time the fused SS2D op against the unfused pipeline and the torch path on one GPU.

For each shape and dtype: fused forward and forward+backward (kernels.triton_ss2d), the unfused pipeline
(cross_scan -> einsum projections -> selective_scan -> cross_merge through kernels' public ops, triton
backend when it has those kernels, else torch) and the torch path (kernels.ss2d(backend='torch')).
CUDA events after warm-up, median of the repeats. The fused op is also set against its roofline: the
fewest bytes it must move (x read, y written, the projections) over the measured device-to-device copy
bandwidth, and its special-function (exp/log/reciprocal) count over the MUFU rate, whichever is larger.

Example::

    PYTHONPATH=. python tools/analysis_tools/benchmark_ss2d.py --json ss2d.json
"""
import argparse
import json
import math
import statistics
import subprocess
import sys

import torch

import kernels
from kernels import triton_ss2d

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
# (name, batch, dim, height, width): VMamba-T's four stages at 224² (ssm_ratio 1, so d_inner = dims) and the
# first stage of a 768² image.
SHAPES = [
    ('T-stage1', 128, 96, 56, 56),
    ('T-stage2', 128, 192, 28, 28),
    ('T-stage3', 128, 384, 14, 14),
    ('T-stage4', 128, 768, 7, 7),
    ('768²-stage1', 16, 96, 192, 192),
]
MUFU_PER_SM_PER_CLOCK = 16  # exp2/log2/rcp throughput on sm_80/sm_90 (CUDA programming guide)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dtypes', nargs='+', default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument('--shapes', nargs='+', default=[s[0] for s in SHAPES], choices=[s[0] for s in SHAPES])
    parser.add_argument('--d-state', type=int, default=1, help='N (the current design: 1; vanilla: 16)')
    parser.add_argument('--channels-first', action='store_true', help='(B, D, H, W) input instead of (B, H, W, D)')
    parser.add_argument('--reps', type=int, default=50, help='timed repeats (median reported)')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--torch-reps', type=int, default=10, help='repeats for the slow torch path')
    parser.add_argument('--skip-torch', action='store_true', help='leave out the torch path')
    parser.add_argument('--json', metavar='PATH', help='also write every number to this JSON file')
    parser.add_argument('--sweep', action='store_true',
                        help='time the fused op for launch configurations on the first shape and dtype (printed '
                        'only; the launch table in kernels/triton_ss2d.py is not changed)')
    parser.add_argument('--profile', action='store_true',
                        help='print the per-kernel time of one fused forward+backward on the first shape and dtype')
    return parser.parse_args(argv)


def median_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)


def copy_bandwidth_gbs(nbytes=1 << 30):
    """Device-to-device copy, counting bytes read plus bytes written."""
    src = torch.empty(nbytes // 4, device='cuda', dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), 5, 20)
    return 2 * nbytes / ms / 1e6


def max_sm_clock_ghz():
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=clocks.max.sm', '--format=csv,noheader,nounits'],
                             capture_output=True, text=True, check=True).stdout
        return float(out.split()[0]) / 1e3
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


def make_problem(batch, dim, height, width, d_state, dtype, channels_last):
    rank = math.ceil(dim / 16)
    shape = (batch, height, width, dim) if channels_last else (batch, dim, height, width)
    x = torch.randn(shape, device='cuda').to(dtype)
    params = [
        torch.randn(4, rank + 2 * d_state, dim, device='cuda') / dim**0.5,
        torch.randn(4, dim, rank, device='cuda') / rank**0.5,
        torch.rand(4, dim, device='cuda') * 4 - 5,
        -torch.exp(torch.rand(4 * dim, d_state, device='cuda') * 2 - 1),
        torch.randn(4 * dim, device='cuda'),
    ]
    return x, params


def unfused_pipeline(backend):
    """The official op sequence: four scanned copies, full-width Δ, separate merge."""

    def run(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last):
        height, width = x.shape[1:3] if channels_last else x.shape[2:4]
        rank, d_state = dt_proj_weight.shape[2], A.shape[1]
        xs = kernels.cross_scan(x, channels_last, backend=backend)
        x_dbl = torch.einsum('kcd,bkdl->bkcl', x_proj_weight.to(x.dtype), xs)
        dts, Bs, Cs = x_dbl.split([rank, d_state, d_state], dim=2)
        delta = torch.einsum('kdr,bkrl->bkdl', dt_proj_weight.to(x.dtype), dts)
        y = kernels.selective_scan(xs.flatten(1, 2), delta.flatten(1, 2), A, Bs.contiguous(), Cs.contiguous(), D,
                                   dt_proj_bias.flatten(), True, True, backend=backend)
        return kernels.cross_merge(y.unflatten(1, (4, -1)), height, width, channels_last, backend=backend)

    return run


def torch_path(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last):
    return kernels.ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, backend='torch')


def unfused_backend(x, params, channels_last):
    """'triton' when kernels has triton cross_scan/selective_scan kernels that run here, else 'torch'."""
    try:
        unfused_pipeline('triton')(x[:1], *params, channels_last)
        return 'triton'
    except (ImportError, NotImplementedError, kernels.BackendUnavailableError):
        return 'torch'


def time_autograd(op, x, params, channels_last, warmup, reps):
    leaves = [x.detach().requires_grad_()] + [p.detach().requires_grad_() for p in params]
    grad = torch.randn(x.shape, device='cuda')
    fwd = median_ms(lambda: op(*leaves, channels_last), warmup, reps)

    def fwd_bwd():
        for leaf in leaves:
            leaf.grad = None
        op(*leaves, channels_last).backward(grad)

    return fwd, median_ms(fwd_bwd, warmup, reps)


def time_fused(x, params, channels_last, warmup, reps):
    grad = torch.randn(x.shape, device='cuda')
    fwd = median_ms(lambda: triton_ss2d.ss2d_fwd(x, *params, channels_last, True), warmup, reps)

    def fwd_bwd():
        _, saved = triton_ss2d.ss2d_fwd(x, *params, channels_last, True)
        triton_ss2d.ss2d_bwd(grad, x, *params, channels_last, saved)

    return fwd, median_ms(fwd_bwd, warmup, reps)


def fused_floor(batch, dim, seq_len, rank, d_state, elem_bytes):
    """(bytes, special-function ops) of forward and of forward+backward, each input read and output written once.

    Forward: x, y (fp32), x_dbl written then read. Backward: x, grad_y (fp32), dx, x_dbl read, its gradient
    written then read. Special functions per element and direction: exp and log for softplus, N exps for the
    decay; the backward recomputes them and adds the sigmoid's reciprocal.
    """
    elems, positions = batch * dim * seq_len, batch * seq_len
    xdbl = positions * 4 * (rank + 2 * d_state) * 4
    fwd_bytes = elems * (elem_bytes + 4) + 2 * xdbl
    bwd_bytes = elems * (2 * elem_bytes + 4) + 3 * xdbl
    fwd_sfu = elems * 4 * (2 + d_state)
    bwd_sfu = elems * 4 * (3 + d_state)
    return (fwd_bytes, fwd_sfu), (fwd_bytes + bwd_bytes, fwd_sfu + bwd_sfu)


# (forward channels per program, forward warps, backward channels per program, backward warps) tried by --sweep.
SWEEP_LAUNCHES = [(32, 2, 16, 1), (32, 2, 32, 2), (32, 4, 32, 4), (64, 2, 64, 2)]


def sweep(x, params, channels_last, warmup, reps):
    """Fused forward and forward+backward time per launch configuration and chunk, on one shape. Prints only:
    the tunables in kernels/triton_ss2d.py are restored afterwards."""
    print('| fwd channels | fwd warps | bwd channels | bwd warps | chunk | fwd ms | f+b ms |\n' + '|---' * 7 + '|')
    # no programs-per-SM floor: every row runs the blocks it names
    names = ('FWD_BLOCK_D', 'FWD_WARPS', 'BWD_BLOCK_D', 'BWD_WARPS', 'CHUNK', 'MIN_PROGRAMS_PER_SM')
    saved = [getattr(triton_ss2d, name) for name in names]
    try:
        for launch in SWEEP_LAUNCHES:
            for chunk in (16, 32):
                for name, value in zip(names, (*launch, chunk, 0)):
                    setattr(triton_ss2d, name, value)
                fwd, fwd_bwd = time_fused(x, params, channels_last, warmup, reps)
                print('| ' + ' | '.join(map(str, (*launch, chunk))) + f' | {fwd:.3f} | {fwd_bwd:.3f} |', flush=True)
    finally:
        for name, value in zip(names, saved):
            setattr(triton_ss2d, name, value)


def profile(x, params, channels_last):
    grad = torch.randn(x.shape, device='cuda')
    for _ in range(3):
        _, saved = triton_ss2d.ss2d_fwd(x, *params, channels_last, True)
        triton_ss2d.ss2d_bwd(grad, x, *params, channels_last, saved)
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        _, saved = triton_ss2d.ss2d_fwd(x, *params, channels_last, True)
        triton_ss2d.ss2d_bwd(grad, x, *params, channels_last, saved)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by='cuda_time_total', row_limit=12), flush=True)


def relative_error(actual, expected):
    return ((actual.float() - expected.float()).norm() / expected.float().norm()).item()


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit('benchmark_ss2d needs a CUDA GPU')
    channels_last = not args.channels_first
    props = torch.cuda.get_device_properties(0)
    bandwidth = copy_bandwidth_gbs()
    clock = max_sm_clock_ghz()
    sfu_rate = props.multi_processor_count * MUFU_PER_SM_PER_CLOCK * clock * 1e9 if clock else None
    info = dict(gpu=props.name, sms=props.multi_processor_count, max_sm_clock_ghz=clock, torch=torch.__version__,
                cuda=torch.version.cuda, triton=__import__('triton').__version__, copy_gbs=bandwidth,
                mufu_per_s=sfu_rate, layout='channels_last' if channels_last else 'channels_first',
                d_state=args.d_state, reps=args.reps, torch_reps=args.torch_reps, command=' '.join(sys.argv))
    print('# ' + ', '.join(f'{k}={v}' for k, v in info.items()))
    if args.sweep or args.profile:
        _, batch, dim, height, width = next(shape for shape in SHAPES if shape[0] == args.shapes[0])
        x, params = make_problem(batch, dim, height, width, args.d_state, DTYPES[args.dtypes[0]], channels_last)
        if args.profile:
            profile(x, params, channels_last)
        if args.sweep:
            sweep(x, params, channels_last, args.warmup, 20)
        del x, params
    rows = []
    for name, batch, dim, height, width in SHAPES:
        if name not in args.shapes:
            continue
        for dtype_name in args.dtypes:
            x, params = make_problem(batch, dim, height, width, args.d_state, DTYPES[dtype_name], channels_last)
            backend = unfused_backend(x, params, channels_last)
            y_fused, _ = triton_ss2d.ss2d_fwd(x, *params, channels_last, True)
            with torch.no_grad():
                y_unfused = unfused_pipeline(backend)(x, *params, channels_last)
            fwd_block_d, bwd_block_d = triton_ss2d.channel_blocks(batch, dim, x.device)
            row = dict(shape=name, batch=batch, dim=dim, height=height, width=width, dtype=dtype_name,
                       chunk=triton_ss2d.chunk_size(height * width),
                       fwd_launch=(fwd_block_d, triton_ss2d.FWD_WARPS),
                       bwd_launch=(bwd_block_d, triton_ss2d.BWD_WARPS), unfused_backend=backend,
                       rel_err_vs_unfused=relative_error(y_fused, y_unfused))
            del y_fused, y_unfused
            row['fused_fwd_ms'], row['fused_fwdbwd_ms'] = time_fused(x, params, channels_last, args.warmup,
                                                                     args.reps)
            row['unfused_fwd_ms'], row['unfused_fwdbwd_ms'] = time_autograd(unfused_pipeline(backend), x, params,
                                                                            channels_last, args.warmup, args.reps)
            if not args.skip_torch:
                try:
                    row['torch_fwd_ms'], row['torch_fwdbwd_ms'] = time_autograd(torch_path, x, params,
                                                                                channels_last, 2, args.torch_reps)
                except torch.cuda.OutOfMemoryError:
                    print(f'# torch path out of memory at {name} {dtype_name}', flush=True)
                    torch.cuda.empty_cache()
            floors = fused_floor(batch, dim, height * width, params[1].shape[2], args.d_state, x.element_size())
            for phase, (nbytes, sfu) in zip(('fwd', 'fwdbwd'), floors):
                ms = row[f'fused_{phase}_ms']
                bytes_ms = nbytes / bandwidth / 1e6
                sfu_ms = sfu / sfu_rate * 1e3 if sfu_rate else 0.0
                row[f'{phase}_bytes'] = nbytes
                row[f'{phase}_gbs'] = nbytes / ms / 1e6
                row[f'{phase}_roofline_ms'] = max(bytes_ms, sfu_ms)
                row[f'{phase}_bound'] = 'memory' if bytes_ms >= sfu_ms else 'sfu'
                row[f'{phase}_of_roofline'] = row[f'{phase}_roofline_ms'] / ms
            rows.append(row)
            print_row(row, bandwidth, header=len(rows) == 1)
            del x, params
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(info=info, rows=rows), f, indent=1)


def print_row(row, bandwidth, header):
    if header:
        print('| shape | dtype | fused fwd ms | fused f+b ms | unfused fwd ms | unfused f+b ms | torch f+b ms '
              '| f+b MB | f+b GB/s (% copy) | f+b roofline ms (bound) | f+b % roofline | f+b × unfused '
              '| f+b × torch | fwd × unfused | rel err |')
        print('|' + '---|' * 15)
    torch_ms = row.get('torch_fwdbwd_ms')
    torch_cell = '-' if torch_ms is None else f'{torch_ms:.2f}'
    torch_speedup = '-' if torch_ms is None else f"{torch_ms / row['fused_fwdbwd_ms']:.1f}"
    print(f"| {row['shape']} | {row['dtype']} | {row['fused_fwd_ms']:.3f} | {row['fused_fwdbwd_ms']:.3f} "
          f"| {row['unfused_fwd_ms']:.3f} | {row['unfused_fwdbwd_ms']:.3f} | {torch_cell} "
          f"| {row['fwdbwd_bytes'] / 1e6:.0f} | {row['fwdbwd_gbs']:.0f} ({100 * row['fwdbwd_gbs'] / bandwidth:.0f}%) "
          f"| {row['fwdbwd_roofline_ms']:.3f} ({row['fwdbwd_bound']}) | {100 * row['fwdbwd_of_roofline']:.0f}% "
          f"| {row['unfused_fwdbwd_ms'] / row['fused_fwdbwd_ms']:.2f} | {torch_speedup} "
          f"| {row['unfused_fwd_ms'] / row['fused_fwd_ms']:.2f} | {row['rel_err_vs_unfused']:.1e} |", flush=True)


if __name__ == '__main__':
    main()
