"""Time the fused SS2D op on one GPU: as shipped against one walk per direction, the unfused pipeline and torch.

The fused op (kernels.triton_ss2d) runs every shape and dtype twice:

- ``one-walk``: ``triton_ss2d.MAX_SEGMENTS`` set to 1, so one program walks each whole direction;
- ``shipped``: the module's own setting, which splits a direction into segments scanned in parallel when the grid
  of (image, direction, channel block) programs cannot fill the GPU (detection at batch 2).

Each row gives the launch plan (channels per program and segments per direction, forward and backward), forward
and forward+backward time, and the op against its roofline: the fewest bytes it must move (x read, y written, the
projections) over the measured device-to-device copy bandwidth, and its special-function (exp/log/reciprocal)
count over the MUFU rate, whichever is larger. The shipped row also gets the speed-up over one-walk and the
comparisons with the unfused pipeline (cross_scan -> einsum projections -> selective_scan -> cross_merge through
kernels' public ops, triton backend when it has those kernels, else torch) and the torch path
(kernels.ss2d(backend='torch')). CUDA events after warm-up, median of the repeats.

After the rows: for each preset of VMamba-T's four stages that ran whole, the sum over its blocks of depth × f+b
ms, one-walk against shipped; then registers per thread and spills of every compiled variant of the ss2d kernels.

Shapes, by ``--shapes`` or ``--preset`` (default ``t224 det``):

- ``t224``: VMamba-T's stages at 224², batch 128 (classification training);
- ``det``: at 800×1280, batch 2 (detection: maps 200×320 down to 25×40);
- ``ade``: at 512², batch 2 (ADE20K UperNet: maps 128² down to 16²);
- ``all``: the three above and the first stage of a 768² image at batch 16.

Example::

    PYTHONPATH=. python tools/analysis_tools/benchmark_ss2d.py --preset det ade --dtypes fp32 bf16 --json ss2d.json
"""
import argparse
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Mapping

import torch
from triton.runtime.jit import JITFunction

import kernels
from kernels import triton_ss2d

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
# (name, batch, dim, height, width) of VMamba-T's four stages (ssm_ratio 1, so d_inner = dims) per workload:
# a stride-4 stem, then three 2× downsamplings.
STAGE_GROUPS = {
    't224': [
        ('T-stage1', 128, 96, 56, 56),
        ('T-stage2', 128, 192, 28, 28),
        ('T-stage3', 128, 384, 14, 14),
        ('T-stage4', 128, 768, 7, 7),
    ],
    'det': [
        ('det-stage1', 2, 96, 200, 320),
        ('det-stage2', 2, 192, 100, 160),
        ('det-stage3', 2, 384, 50, 80),
        ('det-stage4', 2, 768, 25, 40),
    ],
    'ade': [
        ('ade-stage1', 2, 96, 128, 128),
        ('ade-stage2', 2, 192, 64, 64),
        ('ade-stage3', 2, 384, 32, 32),
        ('ade-stage4', 2, 768, 16, 16),
    ],
}
SHAPES = [*(shape for stages in STAGE_GROUPS.values() for shape in stages), ('768²-stage1', 16, 96, 192, 192)]
PRESETS = {**{group: [shape[0] for shape in stages] for group, stages in STAGE_GROUPS.items()},
           'all': [shape[0] for shape in SHAPES]}
DEFAULT_PRESETS = ['t224', 'det']  # 768² is slow
VMAMBA_T_DEPTHS = (2, 2, 8, 2)  # blocks per stage, for the sums over the network
# 'one-walk' first: the shipped row is set against it.
VARIANTS = ('one-walk', 'shipped')
# What the spill table shows of a compiled kernel's specialisation (all its constexprs go into the JSON).
SPEC_KEYS = ('BLOCK_D', 'warps', 'N', 'R')
MUFU_PER_SM_PER_CLOCK = 16  # exp2/log2/rcp throughput on sm_80/sm_90 (CUDA programming guide)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dtypes', nargs='+', default=list(DTYPES), choices=list(DTYPES))
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument('--shapes', nargs='+', choices=[s[0] for s in SHAPES], help='these shapes, in this order')
    selection.add_argument('--preset', nargs='+', choices=list(PRESETS), default=DEFAULT_PRESETS,
                           help='shape groups (default: %(default)s); see the module docstring')
    parser.add_argument('--d-state', type=int, default=1, help='N (the current design: 1; vanilla: 16)')
    parser.add_argument('--channels-first', action='store_true', help='(B, D, H, W) input instead of (B, H, W, D)')
    parser.add_argument('--reps', type=int, default=50, help='timed repeats (median reported)')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--torch-reps', type=int, default=10, help='repeats for the slow torch path')
    parser.add_argument('--skip-torch', action='store_true', help='leave out the torch path')
    parser.add_argument('--skip-unfused', action='store_true', help='leave out the unfused pipeline')
    parser.add_argument('--json', metavar='PATH', help='also write every number to this JSON file')
    parser.add_argument('--sweep', action='store_true',
                        help='time the fused op for launch configurations on the first shape and dtype (printed '
                        'only; the launch table in kernels/triton_ss2d.py is not changed)')
    parser.add_argument('--profile', action='store_true',
                        help='print the per-kernel time of one fused forward+backward on the first shape and dtype')
    args = parser.parse_args(argv)
    if args.shapes is None:
        args.shapes = list(dict.fromkeys(name for preset in args.preset for name in PRESETS[preset]))
    return args


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


def in_variant(variant, measure):
    """measure() with the fused op launched as `variant` runs it; MAX_SEGMENTS is restored whatever happens."""
    if variant == 'shipped':
        return measure()
    saved = triton_ss2d.MAX_SEGMENTS
    triton_ss2d.MAX_SEGMENTS = 1
    try:
        return measure()
    finally:
        triton_ss2d.MAX_SEGMENTS = saved


def measure_fused(x, params, channels_last, geometry, y_unfused, warmup, reps):
    """Launch plan, forward and forward+backward ms of the fused op, and its error against the unfused output."""
    batch, dim, height, width = geometry
    row = dict(plan=triton_ss2d.launch_plan(batch, dim, height * width, x.device)._asdict())
    if y_unfused is not None:
        y_fused, _ = triton_ss2d.ss2d_fwd(x, *params, channels_last, True)
        row['rel_err_vs_unfused'] = relative_error(y_fused, y_unfused)
        del y_fused
    row['fused_fwd_ms'], row['fused_fwdbwd_ms'] = time_fused(x, params, channels_last, warmup, reps)
    return row


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


def add_roofline(row, floors, bandwidth, sfu_rate):
    """Bytes moved, achieved GB/s, roofline ms and bound, and the fraction of the roofline reached, per phase."""
    for phase, (nbytes, sfu) in zip(('fwd', 'fwdbwd'), floors):
        ms = row[f'fused_{phase}_ms']
        bytes_ms = nbytes / bandwidth / 1e6
        sfu_ms = sfu / sfu_rate * 1e3 if sfu_rate else 0.0
        row[f'{phase}_bytes'] = nbytes
        row[f'{phase}_gbs'] = nbytes / ms / 1e6
        row[f'{phase}_roofline_ms'] = max(bytes_ms, sfu_ms)
        row[f'{phase}_bound'] = 'memory' if bytes_ms >= sfu_ms else 'sfu'
        row[f'{phase}_of_roofline'] = row[f'{phase}_roofline_ms'] / ms


def block_sums(rows):
    """Σ over VMamba-T's stages of depth × fused f+b ms, one-walk and shipped, per stage group and dtype whose four
    stages were measured in both variants."""
    fwdbwd_ms = {(row['shape'], row['dtype'], row['variant']): row['fused_fwdbwd_ms'] for row in rows}
    sums = []
    for group, stages in STAGE_GROUPS.items():
        for dtype in dict.fromkeys(row['dtype'] for row in rows):
            totals = {}
            for variant in VARIANTS:
                times = [fwdbwd_ms.get((stage[0], dtype, variant)) for stage in stages]
                if None not in times:
                    totals[variant] = sum(depth * ms for depth, ms in zip(VMAMBA_T_DEPTHS, times))
            if len(totals) == len(VARIANTS):
                sums.append(dict(group=group, dtype=dtype, one_walk_fwdbwd_ms=totals['one-walk'],
                                 shipped_fwdbwd_ms=totals['shipped'],
                                 speedup=totals['one-walk'] / totals['shipped']))
    return sums


def ss2d_kernels(module=triton_ss2d):
    """The module's jitted SS2D kernels by name: its ``_ss2d_*_kernel`` JITFunctions."""
    return {name: value for name, value in vars(module).items()
            if isinstance(value, JITFunction) and name.startswith('_ss2d_') and name.endswith('_kernel')}


def compiled_variants(jit_functions):
    """Every compiled variant of the given kernels, sorted by kernel name: its declared constexprs, warps, registers
    per thread and spills (Triton's local memory per thread in 4-byte words; both None until the variant has been
    loaded on a device), and ``spec``, a short label of its specialisation. None when this Triton keeps its compiled
    kernels elsewhere than the first item of ``JITFunction.device_caches[device]``."""
    variants = []
    for name, fn in sorted(jit_functions.items()):
        caches = _compiled_caches(fn)
        if caches is None:
            return None
        variants += [_describe(name, fn, kernel) for cache in caches for kernel in cache.values()]
    for variant in variants:
        variant['spec'] = _spec_label(variant, variants)
    return variants


def _describe(name, fn, kernel):
    """One compiled variant of the kernel `fn` called `name`: declared constexprs, warps, registers and spills."""
    # Triton also compiles plain integer arguments of value 1 (unit strides) as constants: keep the declared ones.
    declared = {param.name for param in getattr(fn, 'params', ()) if getattr(param, 'is_constexpr', False)}
    constants = getattr(getattr(kernel, 'src', None), 'constants', None) or {}
    constexprs = {_argument_name(fn, key): _plain(getattr(value, 'value', value)) for key, value in constants.items()}
    return dict(kernel=name, constexprs={key: value for key, value in constexprs.items() if key in declared},
                num_warps=getattr(getattr(kernel, 'metadata', None), 'num_warps', None),
                n_regs=getattr(kernel, 'n_regs', None), n_spills=getattr(kernel, 'n_spills', None))


def _compiled_caches(fn):
    """The per-device dicts of compiled kernels of a JITFunction, or None for an unknown layout."""
    device_caches = getattr(fn, 'device_caches', None)
    if not isinstance(device_caches, Mapping):
        return None
    caches = [entry[0] if isinstance(entry, tuple) and entry else None for entry in device_caches.values()]
    return caches if all(isinstance(cache, Mapping) for cache in caches) else None


def _argument_name(fn, key):
    """Name of the kernel argument a compiled constant belongs to (keyed by a 1-tuple path, an index or a name)."""
    if isinstance(key, tuple) and len(key) == 1:
        key = key[0]
    names = getattr(fn, 'arg_names', ())
    if isinstance(key, int) and 0 <= key < len(names):
        return names[key]
    return key if isinstance(key, str) else None


def _plain(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _spec_label(variant, variants):
    """SPEC_KEYS where the variant has them, then any other constexpr in which this kernel's variants differ."""
    fields = {**variant['constexprs'], 'warps': variant['num_warps']}
    siblings = [other['constexprs'] for other in variants if other['kernel'] == variant['kernel']]
    differing = sorted(key for key in variant['constexprs']
                       if key not in SPEC_KEYS and len({repr(other.get(key)) for other in siblings}) > 1)
    return ' '.join(f'{key}={fields[key]}' for key in (*SPEC_KEYS, *differing) if fields.get(key) is not None)


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
                d_state=args.d_state, max_segments=triton_ss2d.MAX_SEGMENTS, reps=args.reps,
                torch_reps=args.torch_reps, command=' '.join(sys.argv))
    print('# ' + ', '.join(f'{k}={v}' for k, v in info.items()))
    shapes = {shape[0]: shape[1:] for shape in SHAPES}
    if args.sweep or args.profile:
        batch, dim, height, width = shapes[args.shapes[0]]
        x, params = make_problem(batch, dim, height, width, args.d_state, DTYPES[args.dtypes[0]], channels_last)
        if args.profile:
            profile(x, params, channels_last)
        if args.sweep:
            sweep(x, params, channels_last, args.warmup, 20)
        del x, params
    rows = []
    for name in args.shapes:
        batch, dim, height, width = shapes[name]
        for dtype_name in args.dtypes:
            x, params = make_problem(batch, dim, height, width, args.d_state, DTYPES[dtype_name], channels_last)
            backend = y_unfused = None
            if not args.skip_unfused:
                backend = unfused_backend(x, params, channels_last)
                with torch.no_grad():
                    y_unfused = unfused_pipeline(backend)(x, *params, channels_last)
            floors = fused_floor(batch, dim, height * width, params[1].shape[2], args.d_state, x.element_size())
            pair = {}
            for variant in VARIANTS:
                row = dict(shape=name, batch=batch, dim=dim, height=height, width=width, dtype=dtype_name,
                           variant=variant, chunk=triton_ss2d.chunk_size(height * width))
                row.update(in_variant(variant, lambda: measure_fused(x, params, channels_last, shapes[name],
                                                                    y_unfused, args.warmup, args.reps)))
                add_roofline(row, floors, bandwidth, sfu_rate)
                pair[variant] = row
            del y_unfused
            shipped, one_walk = pair['shipped'], pair['one-walk']
            for phase in ('fwd', 'fwdbwd'):
                shipped[f'{phase}_speedup_vs_one_walk'] = one_walk[f'fused_{phase}_ms'] / shipped[f'fused_{phase}_ms']
            if not args.skip_unfused:
                shipped['unfused_backend'] = backend
                shipped['unfused_fwd_ms'], shipped['unfused_fwdbwd_ms'] = time_autograd(
                    unfused_pipeline(backend), x, params, channels_last, args.warmup, args.reps)
            if not args.skip_torch:
                try:
                    shipped['torch_fwd_ms'], shipped['torch_fwdbwd_ms'] = time_autograd(
                        torch_path, x, params, channels_last, 2, args.torch_reps)
                except torch.cuda.OutOfMemoryError:
                    print(f'# torch path out of memory at {name} {dtype_name}', flush=True)
                    torch.cuda.empty_cache()
            for variant in VARIANTS:
                rows.append(pair[variant])
                print_row(pair[variant], bandwidth, header=len(rows) == 1)
            del x, params
            torch.cuda.empty_cache()
    summaries = block_sums(rows)
    if summaries:
        print()
    for summary in summaries:
        print(f"# {summary['group']} {summary['dtype']}: Σ depth × f+b ms over VMamba-T's blocks {VMAMBA_T_DEPTHS}: "
              f"one-walk {summary['one_walk_fwdbwd_ms']:.2f}, shipped {summary['shipped_fwdbwd_ms']:.2f} "
              f"({summary['speedup']:.2f}×)", flush=True)
    variants = compiled_variants(ss2d_kernels())
    print()
    print_spill_table(variants)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(info=info, rows=rows, block_sums=summaries, compiled_kernels=variants), f, indent=1)


def print_row(row, bandwidth, header):
    if header:
        print('| shape | dtype | variant | fwd plan (ch×seg) | bwd plan (ch×seg) | fused fwd ms | fused f+b ms '
              '| f+b MB | f+b GB/s (% copy) | f+b roofline ms (bound) | f+b % roofline | fwd × one-walk '
              '| f+b × one-walk | unfused fwd ms | unfused f+b ms | torch f+b ms | f+b × unfused | f+b × torch '
              '| fwd × unfused | rel err |')
        print('|' + '---|' * 20)
    plan = row['plan']

    def cell(value, spec, scale=1.0):
        return '-' if value is None else format(value * scale, spec)

    def ratio(numerator, denominator):
        return '-' if numerator is None or denominator is None else f'{numerator / denominator:.2f}'

    unfused_fwd, unfused_fwdbwd = row.get('unfused_fwd_ms'), row.get('unfused_fwdbwd_ms')
    torch_fwdbwd = row.get('torch_fwdbwd_ms')
    print(f"| {row['shape']} | {row['dtype']} | {row['variant']} "
          f"| {plan['fwd_block_d']}×{plan['fwd_segments']} | {plan['bwd_block_d']}×{plan['bwd_segments']} "
          f"| {row['fused_fwd_ms']:.3f} | {row['fused_fwdbwd_ms']:.3f} "
          f"| {row['fwdbwd_bytes'] / 1e6:.0f} | {row['fwdbwd_gbs']:.0f} ({100 * row['fwdbwd_gbs'] / bandwidth:.0f}%) "
          f"| {row['fwdbwd_roofline_ms']:.3f} ({row['fwdbwd_bound']}) | {100 * row['fwdbwd_of_roofline']:.0f}% "
          f"| {cell(row.get('fwd_speedup_vs_one_walk'), '.2f')} | {cell(row.get('fwdbwd_speedup_vs_one_walk'), '.2f')} "
          f"| {cell(unfused_fwd, '.3f')} | {cell(unfused_fwdbwd, '.3f')} | {cell(torch_fwdbwd, '.2f')} "
          f"| {ratio(unfused_fwdbwd, row['fused_fwdbwd_ms'])} | {ratio(torch_fwdbwd, row['fused_fwdbwd_ms'])} "
          f"| {ratio(unfused_fwd, row['fused_fwd_ms'])} | {cell(row.get('rel_err_vs_unfused'), '.1e')} |", flush=True)


def print_spill_table(variants):
    if variants is None:
        print(f"# registers and spills: this Triton ({__import__('triton').__version__}) keeps its compiled kernels "
              'elsewhere than JITFunction.device_caches; no table', flush=True)
        return
    if not variants:
        print('# registers and spills: no ss2d kernel has been compiled', flush=True)
        return
    print('| kernel | specialisation | registers/thread | spills (4-byte words/thread) |\n' + '|---' * 4 + '|')
    for variant in variants:
        print(f"| {variant['kernel']} | {variant['spec']} | {'-' if variant['n_regs'] is None else variant['n_regs']} "
              f"| {'-' if variant['n_spills'] is None else variant['n_spills']} |", flush=True)


if __name__ == '__main__':
    main()
