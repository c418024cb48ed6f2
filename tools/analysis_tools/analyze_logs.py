"""Plot training curves, or report the training time, from mmengine json logs.

    python tools/analysis_tools/analyze_logs.py plot_curve \\
        work_dirs/vmamba-demo_digits/20260101_000000/vis_data/scalars.json \\
        --keys loss accuracy/top1 --out curves.png
    python tools/analysis_tools/analyze_logs.py cal_train_time work_dirs/*/2026*/vis_data/scalars.json \\
        --skip-iters 50 --images-per-iter 1024

Each key gets its own panel, each log its own line. Training keys (loss, lr) are plotted per
iteration, evaluation keys (accuracy/top1, coco/bbox_mAP, mIoU...) per epoch in by-epoch runs.
"""
import argparse
import os.path as osp
import sys

from vmamba_mm.analysis import figures
from vmamba_mm.analysis.logs import available_keys, read_json_log, series, train_time


class UnknownKeyError(ValueError):
    """A requested key is in none of the logs."""


def run_name(path):
    """A short label for a log: its run folder (``<config>/<timestamp>``) when it has one."""
    parts = osp.normpath(osp.abspath(path)).split(osp.sep)
    if len(parts) >= 4 and parts[-2] == 'vis_data':
        return f'{parts[-4]}/{parts[-3]}'
    return osp.basename(path)


def plot_curve(args):
    logs = [read_json_log(path) for path in args.logs]
    legends = args.legend or [run_name(path) for path in args.logs]
    if len(legends) != len(logs):
        raise ValueError(f'--legend has {len(legends)} names for {len(logs)} logs')
    for key in args.keys:
        if not any(series(records, key).values for records in logs):
            known = sorted({name for records in logs for name in available_keys(records)})
            raise UnknownKeyError(f'key {key!r} is in none of the logs; they have: {", ".join(known)}')
    plt = figures.pyplot()
    figure, axes = plt.subplots(1, len(args.keys), figsize=(4.2 * len(args.keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], args.keys):
        for records, legend in zip(logs, legends):
            curve = series(records, key)
            if curve.values:
                ax.plot(curve.steps, curve.values, marker='o' if len(curve.values) < 30 else None,
                        markersize=3, label=legend)
                ax.set_xlabel(curve.unit)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    if args.title:
        figure.suptitle(args.title)
    figure.tight_layout()
    print(f'curves of {", ".join(args.keys)} written to {figures.save(figure, args.out, dpi=args.dpi)}')


def cal_train_time(args):
    for path in args.logs:
        timing = train_time(read_json_log(path), args.skip_iters)
        throughput = '' if args.images_per_iter is None else f'; {args.images_per_iter / timing["mean"]:.1f} images/s'
        print(f'{run_name(path)}: {timing["mean"]:.4f} s/iter (std {timing["std"]:.4f} over '
              f'{timing["records"]} logged iterations){throughput}; {timing["iterations"]} iterations take about '
              f'{timing["mean"] * timing["iterations"] / 3600:.2f} h')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Analyze mmengine json logs (vis_data/scalars.json).')
    commands = parser.add_subparsers(dest='command', required=True)
    curve = commands.add_parser('plot_curve', help='plot metrics against iterations/epochs as a PNG')
    curve.add_argument('logs', nargs='+', help='json logs (vis_data/scalars.json)')
    curve.add_argument('--keys', nargs='+', default=['loss'],
                       help='keys to plot, e.g. loss accuracy/top1 coco/bbox_mAP mIoU (default: loss)')
    curve.add_argument('--legend', nargs='+', help='one name per log (default: its run folder)')
    curve.add_argument('--title', help='figure title')
    curve.add_argument('--out', default='curves.png', help='output PNG (default: curves.png)')
    curve.add_argument('--dpi', type=int, default=100)
    timing = commands.add_parser('cal_train_time', help='print the mean time per training iteration')
    timing.add_argument('logs', nargs='+', help='json logs (vis_data/scalars.json)')
    timing.add_argument('--skip-iters', type=int, default=0,
                        help='leave out records logged at or before this iteration (warm-up)')
    timing.add_argument('--images-per-iter', type=int,
                        help='images per iteration over all processes (GPUs x batch): also print images/s')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    {'plot_curve': plot_curve, 'cal_train_time': cal_train_time}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
