"""Throughput and peak memory of VMamba beside its peers, measured in one run.

    python tools/analysis_tools/benchmark.py --models vmamba-tiny vmamba-small vmamba-base \
        timm:swin_tiny_patch4_window7_224 timm:convnext_tiny --precisions fp32 fp16 \
        --modes inference train --batch-size 128 --json bench.json

Models (``vmamba_mm.analysis.measured_models``): `vmamba-<arch>` (an `VMamba.arch_zoo` name or a dict
literal; the official classifier head), a classification config file, `timm:<name>`, or
`official:<function>` (a model function of the official classification/models/vmamba.py found
under $VMAMBA_OFFICIAL_SRC, for side-by-side numbers; never part of this project).

Training throughput is forward + cross-entropy + backward without the optimizer step, as the paper's
"train TP". Times are medians over `--repeats` iterations after `--warmup`, taken with CUDA events on
GPUs (wall clock on the CPU). The run states GPU, torch, CUDA and precision, and refuses to report a
VMamba number when its requested kernel backend silently fell back to another.
"""
import argparse
import contextlib
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

from vmamba_mm.analysis.measured_models import PRECISIONS, build_model, fallback_is_an_error

MODES = ('inference', 'train')


class Timer:
    """Per-iteration times in ms: CUDA events on GPUs, wall clock elsewhere."""

    def __init__(self, device):
        self.cuda = device.type == 'cuda'

    def measure(self, step, warmup, repeats):
        for _ in range(warmup):
            step()
        self._sync()
        times = []
        for _ in range(repeats):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                step()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                start = time.perf_counter()
                step()
                times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    def _sync(self):
        if self.cuda:
            torch.cuda.synchronize()


def make_step(model, mode, images, labels, dtype):
    device_type = images.device.type
    autocast = torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    if mode == 'inference':

        @torch.inference_mode()
        def step():
            with autocast:
                model(images)
    else:

        def step():
            with autocast:
                loss = F.cross_entropy(model(images).float(), labels)
            loss.backward()
            model.zero_grad(set_to_none=True)

    return step


def measure(model, mode, precision, batch_size, resolution, device, warmup, repeats, profile_top=0):
    """Images per second and peak memory (bytes; None on CPU) for one configuration; with profile_top,
    also prints where one more step spends its time."""
    model.train(mode == 'train')
    images = torch.randn(batch_size, 3, resolution, resolution, device=device)
    # Class 0 for every image: valid for any number of classes, and the loss costs the same whatever the labels.
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    step = make_step(model, mode, images, labels, PRECISIONS[precision])
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    milliseconds = Timer(device).measure(step, warmup, repeats)
    peak = torch.cuda.max_memory_allocated(device) if device.type == 'cuda' else None
    if profile_top:
        print(kernel_breakdown(step, device, profile_top), flush=True)
    return batch_size * 1e3 / milliseconds, peak


def kernel_breakdown(step, device, top):
    """The `top` kernels (GPU) or operators (CPU) by total time in one step, with their share."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CUDA] if device.type == 'cuda' else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    attribute = 'self_device_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    events = [event for event in prof.key_averages() if getattr(event, attribute) > 0]
    events.sort(key=lambda event: getattr(event, attribute), reverse=True)
    total = sum(getattr(event, attribute) for event in events)
    lines = [f'#   step: {total / 1e3:.2f} ms in {len(events)} distinct kernels']
    for event in events[:top]:
        time_us = getattr(event, attribute)
        lines.append(f'#   {time_us / 1e3:8.2f} ms {100 * time_us / total:5.1f}% x{event.count:<4} {event.key[:110]}')
    return '\n'.join(lines)


@torch.no_grad()
def compare_backends(spec, device, precision, batch_size=8, resolution=224):
    """Largest logit difference between the triton and torch SS2D backends, absolute and relative to
    the largest logit, for one VMamba model on the same weights and images."""
    import kernels
    model = build_model(spec, kernel_backend=None).to(device).eval()
    images = torch.randn(batch_size, 3, resolution, resolution, device=device)
    dtype = PRECISIONS[precision]
    logits = {}
    for backend in ('torch', 'triton'):
        kernels.set_backend(backend)
        try:
            with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
                logits[backend] = model(images).float()
        finally:
            kernels.set_backend(None)
    difference = (logits['triton'] - logits['torch']).abs().max().item()
    return difference, difference / logits['torch'].abs().max().item()


def environment(device):
    info = {'torch': torch.__version__, 'cuda': torch.version.cuda, 'device': str(device)}
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def run(args):
    from vmamba_mm.models import compile_settings_for
    device = torch.device(args.device)
    rows = []
    for spec in args.models:
        for resolution in args.resolutions:
            batch_size = args.batch_size if resolution <= args.large_from else args.large_batch_size
            with fallback_is_an_error(args.kernel_backend):
                model = build_model(spec, args.kernel_backend, args.drop_path_rate).to(device)
                model = model.to(memory_format=torch.channels_last) if args.channels_last else model
                # Static shapes: each resolution gets its own graph, as a run at that size would. Dynamo's
                # cache is per code object, shared by all models of a class: without this, the second
                # resolution would recompile with the image size made dynamic.
                compiled = torch.compile(model, mode=args.compile, dynamic=False) if args.compile else model
                # inductor compiles on the first call, inside measure(), so that is where its settings count
                with compile_settings_for(model) if args.compile else contextlib.nullcontext():
                    for precision in args.precisions:
                        for mode in args.modes:
                            try:
                                throughput, peak = measure(compiled, mode, precision, batch_size, resolution,
                                                           device, args.warmup, args.repeats, args.profile)
                            except torch.OutOfMemoryError:
                                throughput, peak = math.nan, math.nan
                            rows.append(dict(model=spec, resolution=resolution, batch_size=batch_size,
                                             precision=precision, mode=mode, images_per_s=throughput,
                                             peak_memory_gb=None if peak is None else peak / 2**30))
                            print(format_row(rows[-1]), flush=True)
            del model, compiled
    return rows


def format_row(row):
    memory = '-' if row['peak_memory_gb'] is None else f"{row['peak_memory_gb']:.2f}"
    return (f"{row['model']:<40} {row['resolution']:>5} {row['batch_size']:>5} {row['precision']:>5} "
            f"{row['mode']:>9} {row['images_per_s']:>10.1f} {memory:>8}")


def table(rows, env):
    settings = [f'{name}={value}' for group in env.get('vmamba_compile_settings', {}).values()
                for name, value in group.items()]
    compiled = f" | VMamba compiled with {', '.join(settings)}" if settings else ''
    header = (f"# {env.get('gpu', env['device'])} | torch {env['torch']} | CUDA {env['cuda']}{compiled}\n"
              f"{'model':<40} {'res':>5} {'batch':>5} {'prec':>5} {'mode':>9} {'img/s':>10} {'mem GB':>8}")
    return '\n'.join([header] + [format_row(row) for row in rows])


def scaling(rows):
    """img/s × pixels relative to the smallest resolution: 1.0 means cost linear in pixels."""
    result = {}
    for row in rows:
        key = (row['model'], row['precision'], row['mode'])
        result.setdefault(key, []).append((row['resolution'], row['images_per_s'] * row['resolution']**2))
    return {key: [(res, value / points[0][1]) for res, value in sorted(points)]
            for key, points in result.items() if len(points) > 1}


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(10, 4))
    series = {}
    for row in rows:
        series.setdefault((row['model'], row['precision'], row['mode']), []).append(row)
    for (model, precision, mode), points in series.items():
        points.sort(key=lambda row: row['resolution'])
        label = f'{model} {precision} {mode}'
        speed.plot([p['resolution'] for p in points], [p['images_per_s'] for p in points], marker='o', label=label)
        if points[0]['peak_memory_gb'] is not None:
            memory.plot([p['resolution'] for p in points], [p['peak_memory_gb'] for p in points], marker='o',
                        label=label)
    speed.set(xlabel='resolution (px)', ylabel='images / s', yscale='log', title='throughput')
    memory.set(xlabel='resolution (px)', ylabel='peak memory (GB)', title='peak memory')
    speed.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=['vmamba-tiny'])
    parser.add_argument('--resolutions', nargs='+', type=int, default=[224])
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--large-batch-size', type=int, default=32, help='batch above --large-from pixels')
    parser.add_argument('--large-from', type=int, default=512)
    parser.add_argument('--precisions', nargs='+', choices=sorted(PRECISIONS), default=['fp32', 'fp16'])
    parser.add_argument('--modes', nargs='+', choices=MODES, default=list(MODES))
    parser.add_argument('--kernel-backend', choices=['torch', 'triton'], default=None,
                        help='force the SS2D backend (default: automatic; a silent fallback is an error)')
    parser.add_argument('--drop-path-rate', type=float, default=0.0, metavar='RATE',
                        help='stochastic depth of the vmamba-<arch> models, which train with it (the ImageNet recipes: '
                        'T 0.2, S 0.3, B 0.6; default 0)')
    parser.add_argument('--compile', nargs='?', const='default', metavar='MODE',
                        choices=['default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'],
                        help='torch.compile each model, in this mode (default: "default"; "reduce-overhead" '
                        'replays CUDA graphs)')
    parser.add_argument('--compare-backends', action='store_true',
                        help='first print the logit difference between the triton and torch backends (VMamba models)')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--profile', type=int, default=0, metavar='TOP',
                        help='after each row, print the TOP kernels of one more step by time')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=50)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--json', help='write rows and environment here')
    parser.add_argument('--plot', help='write throughput/memory against resolution as PNG here')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda requested but no CUDA device is visible')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.device.startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        # Every peer's own training script autotunes cuDNN for its fixed shapes (the official main.py, timm's
        # train.py, this project's classification runtime): each model is measured at its best settings.
        torch.backends.cudnn.benchmark = True
    env = environment(torch.device(args.device))
    env['cudnn_benchmark'] = torch.backends.cudnn.benchmark
    if args.compile:
        from vmamba_mm.models.compile_settings import SETTINGS
        env['vmamba_compile_settings'] = SETTINGS
    if args.compare_backends:
        for spec in (spec for spec in args.models if spec.startswith('vmamba-')):
            for precision in args.precisions:
                absolute, relative = compare_backends(spec, torch.device(args.device), precision)
                print(f'backends {spec} {precision}: max |triton - torch| = {absolute:.3g} ({relative:.3g} of max |logit|)')
    rows = run(args)
    print(table(rows, env))
    for (model, precision, mode), points in scaling(rows).items():
        print(f'pixel-scaling {model} {precision} {mode}: ' + ', '.join(f'{r}²: {v:.2f}' for r, v in points))
    if args.json:
        with open(args.json, 'w') as file:
            json.dump(dict(environment=env, args=vars(args), rows=rows), file, indent=1)
    if args.plot:
        plot(rows, args.plot)
    return rows


if __name__ == '__main__':
    main()
