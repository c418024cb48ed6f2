"""Training speed in the loop users run: a task config's Runner, as tools/train.py builds it, on in-memory data.

    python tools/analysis_tools/benchmark_train.py configs/classification/vmamba-tiny_8xb128-300e_in1k.py --official
    python tools/analysis_tools/benchmark_train.py configs/detection/mask-rcnn_vmamba-tiny_fpn_1x_coco.py --amp
    python tools/analysis_tools/benchmark_train.py \\
        configs/segmentation/upernet_vmamba-tiny_8xb2-160k_ade20k-512x512.py --iters 50 --warmup 10 --out seg.json

The config's optimizer wrapper, AMP, gradient clipping, EMA, schedules, hooks and logging run as configured; only
the dataset is replaced by one of the same shape held in memory (ImageNet 224² through the recipe's augmentations and
batch augments, COCO-sized images with boxes and masks, ADE20K images cropped to 512²), and validation and
checkpoint files are left out. Reported after warm-up: images per second, peak GPU memory, the first iteration's
latency (compilation included) and the mean time of each part of a step (see vmamba_mm.analysis.train_benchmark).

--official adds the official implementation in the same run, from the checkout named by $VMAMBA_OFFICIAL_SRC:
for classification its model in a loop doing what its main.py train_one_epoch does; for detection and segmentation
the same config with its backbone in place of VMamba.

Data-parallel, as tools/dist_train.sh trains (each process its --batch-size images per step, DDP between them):

    python tools/analysis_tools/benchmark_train.py CONFIG --out 1proc.json
    bash tools/dist_launch.sh 8 tools/analysis_tools/benchmark_train.py CONFIG --baseline-json 1proc.json

reports every process's row, the total throughput and, against the one-process run, the speed-up and the scaling
efficiency (rank 0 prints them and writes --out).
"""
import argparse
import json
import sys

import torch
from mmengine.config import DictAction

import vmamba_mm  # noqa: F401 (compatibility shims, VMamba and the synthetic datasets registered)
from vmamba_mm import launch
from vmamba_mm.analysis import train_benchmark


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a classification, detection or segmentation config')
    parser.add_argument('--iters', type=int, default=50, help='timed iterations (default: 50)')
    parser.add_argument('--warmup', type=int, default=10, help='iterations before timing (default: 10)')
    parser.add_argument('--amp', action='store_true', help="as tools/train.py's --amp (the classification recipes "
                        'already train in mixed precision)')
    parser.add_argument('--compile', action=argparse.BooleanOptionalAction, default=None,
                        help="compile the model (--compile) or not (--no-compile); default: as the config says")
    parser.add_argument('--batch-size', type=int, help='images per iteration (default: the config\'s)')
    parser.add_argument('--official', action='store_true',
                        help='also measure the official implementation (needs $VMAMBA_OFFICIAL_SRC)')
    parser.add_argument('--work-dir', help='keep the runs\' logs here (default: a temporary folder)')
    parser.add_argument('--out', metavar='JSON', help='write the environment and the result rows here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, as in tools/train.py')
    parser.add_argument('--baseline-json', metavar='JSON',
                        help='the --out of a one-process run of the same benchmark: a distributed run reports its '
                        'speed-up and scaling efficiency against it')
    args = launch.parse_with_launcher(parser, argv)
    for name in ('iters', 'warmup', 'batch_size'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.official and args.launcher != 'none':
        parser.error('--official runs in one process: leave out the launcher (tools/dist_launch.sh)')
    if args.baseline_json and args.launcher == 'none':
        parser.error('--baseline-json is for a distributed run: start the benchmark with tools/dist_launch.sh')
    return args


def run(args, official_source=None):
    official = None if official_source is None else train_benchmark.official_module(official_source)
    options = dict(iterations=args.iters, warmup=args.warmup, amp=args.amp, batch_size=args.batch_size,
                   cfg_options=args.cfg_options)
    rows = [train_benchmark.benchmark_config(args.config, compile=args.compile, work_dir=args.work_dir,
                                             launcher=args.launcher, **options)]
    if official is not None:
        print(train_benchmark.format_table(rows, train_benchmark.environment()), flush=True)
        if rows[0]['task'] == 'mmpretrain':
            # The official recipe always trains in mixed precision and never compiles.
            official_options = dict(options, amp=True)
            rows.append(train_benchmark.benchmark_official_classification(args.config, official, **official_options))
        else:
            rows.append(train_benchmark.benchmark_config(args.config, compile=args.compile, official=official,
                                                         work_dir=args.work_dir, **options))
    return rows


def main(argv=None):
    args = parse_args(argv)
    # Mistakes in the command line are named before anything is built or measured.
    try:
        source = train_benchmark.official_source() if args.official else None
        cfg = launch.load_config(args.config, args.cfg_options)
        baseline = None
        if args.baseline_json:
            batch_size = args.batch_size or cfg.train_dataloader.batch_size
            baseline = train_benchmark.read_baseline(args.baseline_json, args.config, batch_size, args.amp,
                                                     args.compile)
    except train_benchmark.OfficialSourceMissing as error:
        sys.exit(str(error))
    except launch.USER_ERRORS as error:
        sys.exit(f'{type(error).__name__}: {error}')
    if args.launcher == 'none':
        return report(args, run(args, source))
    with launch.process_group_closed():
        try:
            rows = train_benchmark.gather_rows(run(args, source)[0])
        except launch.LauncherEnvironmentError as error:  # --launcher without the launcher
            sys.exit(f'{type(error).__name__}: {error}')
        rank = torch.distributed.get_rank()
    # Every process holds every row; one reports them.
    if rank == 0:
        report(args, rows, train_benchmark.scaling_summary(rows, baseline))
    return rows


def report(args, rows, scaling=None):
    """Print the table (and, for a distributed run, its scaling) and write --out."""
    env = train_benchmark.environment()
    print(train_benchmark.format_table(rows, env))
    result = dict(environment=env, args=vars(args), parts=train_benchmark.PART_DOCS, rows=rows)
    if scaling is not None:
        print(train_benchmark.format_scaling(scaling))
        result['distributed'] = scaling
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(result, file, indent=1)
    return rows


if __name__ == '__main__':
    launch.run_as_program(main)
