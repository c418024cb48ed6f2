"""Check kernels.layer_norm's Triton kernel against F.layer_norm on one GPU and time both at VMamba-T's shapes.

For each LayerNorm shape of VMamba-T (batch 128, 224²) and input mode:

* accuracy: the largest error of y and of the gradients of x, weight and bias against a float64
  F.layer_norm, relative to the largest reference value, for the Triton kernel and for torch's. The kernel
  passes when each of its errors is at most twice torch's plus one unit of that tensor's precision, and its
  output and gradient dtypes are F.layer_norm's;
* speed: forward (under no_grad) and forward+backward times of both, CUDA events after warm-up, median of
  the repeats; the kernel's forward+backward bandwidth (the least traffic: x read by both passes, y written,
  dy read, dx written) against a device-to-device copy; with every shape, the total over the 48 LayerNorms
  of a VMamba-T step.

Modes: fp32; fp16 / bf16 inputs with parameters in the same dtype (a .half() model); fp16-amp / bf16-amp:
half inputs, fp32 parameters, under autocast (mixed-precision training; F.layer_norm then copies x to fp32
first and returns fp32, and so does the kernel's output, without the copy). ``--inductor`` adds
torch.compile(F.layer_norm); ``--sweep`` times the kernel's launch tunables per shape (prints only).
Exits with status 1 when a check fails.

Example::

    PYTHONPATH=. python tools/analysis_tools/benchmark_layer_norm.py --json layer_norm.json
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

import kernels
from kernels import triton_layer_norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_ss2d import copy_bandwidth_gbs, median_ms  # noqa: E402  the GPU timing both tools share

# mode: (x dtype, parameter dtype, autocast dtype or None)
MODES = {
    'fp32': (torch.float32, torch.float32, None),
    'fp16': (torch.float16, torch.float16, None),
    'bf16': (torch.bfloat16, torch.bfloat16, None),
    'fp16-amp': (torch.float16, torch.float32, torch.float16),
    'bf16-amp': (torch.bfloat16, torch.float32, torch.bfloat16),
}
# (name, (batch, height, width, channels), LayerNorms of that shape in one VMamba-T forward). The stem's first
# norm; then per stage its blocks' norm1, SS2D out_norm and norm2 (ssm_ratio 1: all C wide) and the norm
# that ends the stem or downsample feeding it; stage 4 adds the classifier's outnorm3. 48 in all.
SHAPES = [
    ('T-stem', (128, 112, 112, 48), 1),
    ('T-stage1', (128, 56, 56, 96), 2 * 3 + 1),
    ('T-stage2', (128, 28, 28, 192), 2 * 3 + 1),
    ('T-stage3', (128, 14, 14, 384), 8 * 3 + 1),
    ('T-stage4', (128, 7, 7, 768), 2 * 3 + 1 + 1),
]
IMPLEMENTATIONS = ('triton', 'torch')
GRADIENTS = ('y', 'dx', 'dweight', 'dbias')
SWEEP_FWD = [(tile, per_thread) for tile in (1024, 2048, 4096, 8192) for per_thread in (8, 16, 32)]
SWEEP_BWD = [(tile, per_thread, per_sm) for tile in (1024, 2048, 4096) for per_thread in (8, 16, 32)
             for per_sm in (4, 8, 16)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=list(MODES))
    parser.add_argument('--shapes', nargs='+', default=[s[0] for s in SHAPES], choices=[s[0] for s in SHAPES])
    parser.add_argument('--reps', type=int, default=50, help='timed repeats (median reported)')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--inductor', action='store_true', help='also time torch.compile(F.layer_norm)')
    parser.add_argument('--sweep', action='store_true',
                        help='time the launch tunables of kernels/triton_layer_norm.py per shape, first mode '
                        '(printed only; the module is not changed)')
    parser.add_argument('--json', metavar='PATH', help='also write every number to this JSON file')
    return parser.parse_args(argv)


def make_problem(shape, mode, device):
    x_dtype, param_dtype, _ = MODES[mode]
    channels = shape[-1]
    x = (torch.randn(shape, device=device) * 2 + 0.5).to(x_dtype)
    weight = (1 + 0.1 * torch.randn(channels, device=device)).to(param_dtype)
    bias = (0.1 * torch.randn(channels, device=device)).to(param_dtype)
    return x, weight, bias


def output_dtype(mode):
    """F.layer_norm's output dtype in a mode: fp32 under (CUDA) autocast, else x's."""
    x_dtype, _, autocast_dtype = MODES[mode]
    return x_dtype if autocast_dtype is None else torch.float32


def _f_layer_norm(x, weight, bias):
    return F.layer_norm(x, x.shape[-1:], weight, bias)


def layer_norm_fn(implementation, mode):
    """(x, weight, bias) -> y through ``implementation``, under the mode's autocast."""
    autocast_dtype = MODES[mode][2]
    if implementation == 'triton':
        fn = lambda x, weight, bias: kernels.layer_norm(x, weight, bias, backend='triton')  # noqa: E731
    elif implementation == 'torch':
        fn = _f_layer_norm
    else:
        torch._dynamo.reset()  # a fresh compile per problem, not a fallback to eager past the recompile limit
        fn = torch.compile(_f_layer_norm, dynamic=False)

    def run(x, weight, bias):
        with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            return fn(x, weight, bias)

    return run


def forward_backward(fn, x, weight, bias, grad):
    """(y, dx, dweight, dbias) of fn, the backward run outside autocast as in a training step."""
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]
    y = fn(*leaves)
    y.backward(grad)
    return [y.detach()] + [leaf.grad for leaf in leaves]


def relative_max_error(actual, expected):
    return ((actual.double() - expected).abs().max() / expected.abs().max().clamp_min(1e-300)).item()


def passes(errors, torch_errors, dtypes):
    """The kernel's error is at most twice torch's plus one unit (eps) of each tensor's dtype."""
    return all(errors[name] <= 2 * torch_errors[name] + torch.finfo(dtypes[name]).eps for name in GRADIENTS)


def accuracy(x, weight, bias, mode):
    """Errors against float64 and result dtypes, per implementation, and whether the kernel passes."""
    grad = torch.randn(x.shape, device=x.device).to(output_dtype(mode))
    expected = forward_backward(_f_layer_norm, x.double(), weight.double(), bias.double(), grad.double())
    row = {}
    for implementation in IMPLEMENTATIONS:
        results = forward_backward(layer_norm_fn(implementation, mode), x, weight, bias, grad)
        row[f'{implementation}_err'] = {
            name: relative_max_error(a, e)
            for name, a, e in zip(GRADIENTS, results, expected)
        }
        row[f'{implementation}_dtypes'] = {
            name: str(t.dtype).replace('torch.', '')
            for name, t in zip(GRADIENTS, results)
        }
        del results
    dtypes = {name: getattr(torch, dtype) for name, dtype in row['torch_dtypes'].items()}
    row['ok'] = row['triton_dtypes'] == row['torch_dtypes'] and passes(row['triton_err'], row['torch_err'], dtypes)
    return row


def time_fwd_and_fwd_bwd(fn, x, weight, bias, out_dtype, warmup, reps):
    with torch.no_grad():
        fwd = median_ms(lambda: fn(x, weight, bias), warmup, reps)
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]
    grad = torch.randn(x.shape, device=x.device).to(out_dtype)

    def fwd_bwd():
        for leaf in leaves:
            leaf.grad = None
        fn(*leaves).backward(grad)

    return fwd, median_ms(fwd_bwd, warmup, reps)


def fwd_bwd_bytes(elements, x_bytes, y_bytes):
    """Least traffic of forward+backward: x read and y written, then x and dy read and dx written."""
    return elements * (x_bytes + y_bytes + x_bytes + y_bytes + x_bytes)


def sweep(name, x, weight, bias, out_dtype, warmup, reps):
    """Kernel times per launch configuration on one problem; the module's tunables are restored after."""
    names = ('FWD_TILE', 'FWD_ELEMENTS_PER_THREAD', 'BWD_TILE', 'BWD_ELEMENTS_PER_THREAD', 'BWD_PROGRAMS_PER_SM')
    saved = {n: getattr(triton_layer_norm, n) for n in names}
    grad = torch.randn(x.shape, device=x.device).to(out_dtype)
    try:
        print(f'# sweep {name}: forward\n| tile | elements/thread | fwd ms |\n|---|---|---|')
        for tile, per_thread in SWEEP_FWD:
            triton_layer_norm.FWD_TILE, triton_layer_norm.FWD_ELEMENTS_PER_THREAD = tile, per_thread
            ms = median_ms(lambda: triton_layer_norm.layer_norm_fwd(x, weight, bias, 1e-5, out_dtype), warmup, reps)
            print(f'| {tile} | {per_thread} | {ms:.3f} |', flush=True)
        print(f'# sweep {name}: backward\n| tile | elements/thread | programs/SM | bwd ms |\n|---|---|---|---|')
        for tile, per_thread, per_sm in SWEEP_BWD:
            (triton_layer_norm.BWD_TILE, triton_layer_norm.BWD_ELEMENTS_PER_THREAD,
             triton_layer_norm.BWD_PROGRAMS_PER_SM) = tile, per_thread, per_sm
            ms = median_ms(lambda: triton_layer_norm.layer_norm_bwd(grad, x, weight, bias, 1e-5), warmup, reps)
            print(f'| {tile} | {per_thread} | {per_sm} | {ms:.3f} |', flush=True)
    finally:
        for n, value in saved.items():
            setattr(triton_layer_norm, n, value)


def format_errors(errors):
    return '/'.join(f'{errors[name]:.0e}' for name in GRADIENTS)


def print_row(row, bandwidth, inductor, header):
    columns = ['shape', 'rows × C', 'mode', 'out', 'triton fwd ms', 'torch fwd ms', 'fwd ×', 'triton f+b ms',
               'torch f+b ms', 'f+b ×']
    columns += ['inductor fwd ms', 'inductor f+b ms'] if inductor else []
    columns += ['triton f+b GB/s (% copy)', 'err y/dx/dw/db triton', 'err torch', 'check']
    if header:
        print('| ' + ' | '.join(columns) + ' |\n' + '|---' * len(columns) + '|')
    cells = [row['shape'], f"{row['rows']} × {row['channels']}", row['mode'], row['triton_dtypes']['y'],
             f"{row['triton_fwd_ms']:.3f}", f"{row['torch_fwd_ms']:.3f}",
             f"{row['torch_fwd_ms'] / row['triton_fwd_ms']:.2f}", f"{row['triton_fwdbwd_ms']:.3f}",
             f"{row['torch_fwdbwd_ms']:.3f}", f"{row['torch_fwdbwd_ms'] / row['triton_fwdbwd_ms']:.2f}"]
    if inductor:
        cells += [f"{row['inductor_fwd_ms']:.3f}", f"{row['inductor_fwdbwd_ms']:.3f}"]
    cells += [f"{row['triton_fwdbwd_gbs']:.0f} ({100 * row['triton_fwdbwd_gbs'] / bandwidth:.0f}%)",
              format_errors(row['triton_err']), format_errors(row['torch_err']), 'ok' if row['ok'] else 'FAILED']
    print('| ' + ' | '.join(cells) + ' |', flush=True)


def step_totals(rows, implementations):
    """Per mode, the ms of all 48 LayerNorms of a VMamba-T step, when every shape was measured."""
    totals = {}
    for mode in dict.fromkeys(row['mode'] for row in rows):
        mode_rows = [row for row in rows if row['mode'] == mode]
        if len(mode_rows) == len(SHAPES):
            totals[mode] = {f'{impl}_{phase}_ms': sum(row['calls'] * row[f'{impl}_{phase}_ms'] for row in mode_rows)
                            for impl in implementations for phase in ('fwd', 'fwdbwd')}
    return totals


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit('benchmark_layer_norm needs a CUDA GPU (it checks and times the Triton kernel against '
                 "torch's on one); on a CPU, run tests/kernels/test_layer_norm.py instead")
    props = torch.cuda.get_device_properties(0)
    bandwidth = copy_bandwidth_gbs()
    info = dict(gpu=props.name, sms=props.multi_processor_count, torch=torch.__version__, cuda=torch.version.cuda,
                triton=__import__('triton').__version__, copy_gbs=bandwidth, reps=args.reps,
                fwd_launch=(triton_layer_norm.FWD_TILE, triton_layer_norm.FWD_ELEMENTS_PER_THREAD),
                bwd_launch=(triton_layer_norm.BWD_TILE, triton_layer_norm.BWD_ELEMENTS_PER_THREAD,
                            triton_layer_norm.BWD_PROGRAMS_PER_SM), command=' '.join(sys.argv))
    print('# ' + ', '.join(f'{k}={v}' for k, v in info.items()))
    implementations = IMPLEMENTATIONS + (('inductor', ) if args.inductor else ())
    rows = []
    for name, shape, calls in SHAPES:
        if name not in args.shapes:
            continue
        if args.sweep:
            sweep(name, *make_problem(shape, args.modes[0], 'cuda'), output_dtype(args.modes[0]), args.warmup, 20)
        for mode in args.modes:
            x, weight, bias = make_problem(shape, mode, 'cuda')
            rows_count = x.numel() // shape[-1]
            row = dict(shape=name, rows=rows_count, channels=shape[-1], mode=mode, calls=calls,
                       **accuracy(x, weight, bias, mode))
            torch.cuda.empty_cache()
            for implementation in implementations:
                row[f'{implementation}_fwd_ms'], row[f'{implementation}_fwdbwd_ms'] = time_fwd_and_fwd_bwd(
                    layer_norm_fn(implementation, mode), x, weight, bias, output_dtype(mode), args.warmup, args.reps)
            out_bytes = torch.finfo(output_dtype(mode)).bits // 8
            row['fwdbwd_bytes'] = fwd_bwd_bytes(x.numel(), x.element_size(), out_bytes)
            row['triton_fwdbwd_gbs'] = row['fwdbwd_bytes'] / row['triton_fwdbwd_ms'] / 1e6
            rows.append(row)
            print_row(row, bandwidth, args.inductor, header=len(rows) == 1)
            del x, weight, bias
            torch.cuda.empty_cache()
    totals = step_totals(rows, implementations)
    for mode, total in totals.items():
        print(f'# VMamba-T step, 48 LayerNorms, {mode}: ' + ', '.join(f'{k} {v:.2f}' for k, v in total.items()))
    failed = [f"{row['shape']} {row['mode']}" for row in rows if not row['ok']]
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(info=info, rows=rows, step_totals=totals, failed=failed), f, indent=1)
    if failed:
        sys.exit(f'CHECK FAILED: {", ".join(failed)}')
    print('# all checks passed')
    return rows


if __name__ == '__main__':
    main()
