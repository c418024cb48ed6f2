"""Train a model from a vmamba_mm config: classification (mmpretrain), detection (mmdet) or
segmentation (mmseg), chosen by the config's `default_scope`, on mmengine's Runner.

    python tools/train.py configs/classification/vmamba-demo_digits.py
    python tools/train.py CONFIG --resume                 # continue from the work dir's latest checkpoint
    python tools/train.py CONFIG --amp --auto-scale-lr --cfg-options train_dataloader.batch_size=64
    python tools/train.py CONFIG --vis-backend tensorboard   # then: tensorboard --logdir work_dirs
"""
import argparse
import logging

from mmengine.config import DictAction
from mmengine.logging import print_log

import vmamba_mm  # noqa: F401 (compatibility shims, VMamba registration)
from vmamba_mm import launch
from vmamba_mm.datasets import check_batch_norm_batch_size, check_data_pipelines, check_dataset_roots
from vmamba_mm.engine.runner import check_resumable
from vmamba_mm.loading import read_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a VMamba model (mmpretrain, mmdet or mmseg, from the config\'s default_scope).')
    parser.add_argument('config', help='config file, e.g. configs/classification/vmamba-demo_digits.py')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', metavar='CKPT',
        help='resume training (weights, optimizer, scheduler, EMA, loss scale, iteration) from CKPT, or from '
        "the work dir's latest checkpoint when CKPT is omitted")
    parser.add_argument(
        '--amp', action='store_true',
        help='automatic mixed precision: float16 with dynamic loss scaling on GPUs, bfloat16 on a CPU')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help="scale the learning rate by (GPUs x batch per GPU) / the config's auto_scale_lr.base_batch_size")
    parser.add_argument(
        '--vis-backend', choices=sorted(launch.VIS_BACKENDS),
        help="also log the run's scalars to this backend (tensorboard: event files in the run's vis_data folder)")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
        help='override config entries, e.g. train_cfg.max_epochs=10 model.backbone.drop_path_rate=0.1')
    return launch.parse_with_launcher(parser, argv)


def build_config(args):
    cfg = launch.load_config(args.config, args.cfg_options)
    launch.register_scope(cfg)
    check_dataset_roots(cfg, ('train_dataloader', 'val_dataloader') if cfg.get('val_cfg') is not None else
                        ('train_dataloader', ))
    check_data_pipelines(cfg, ('val_dataloader', ))
    check_batch_norm_batch_size(cfg, world_size=launch.world_size(args.launcher))
    if args.vis_backend is not None:
        launch.add_vis_backend(cfg, args.vis_backend)
    if args.amp:
        launch.enable_amp(cfg)
    if launch.amp_on_cpu(cfg):
        print_log('no GPU: mixed precision runs as bfloat16 autocast on the CPU (CPUAutocastOptimWrapper)',
                  logger='current', level=logging.WARNING)

    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError(f'--auto-scale-lr needs auto_scale_lr.base_batch_size in {args.config}, '
                             f'the total batch size its learning rate was set for')
        cfg.auto_scale_lr.enable = True

    explicit_resume = args.resume not in (None, 'auto')
    if explicit_resume:  # a bad checkpoint gets its clear error now, before the Runner writes anything
        check_resumable(read_checkpoint(args.resume), args.resume)

    cfg.launcher = args.launcher
    work_dir = launch.resolve_work_dir(cfg, args.work_dir, args.config)

    if args.resume is None:
        previous = launch.latest_checkpoint(work_dir)
        if previous is not None and not cfg.get('resume', False):
            raise launch.WorkDirError(
                f'work dir {work_dir} already holds a run (latest checkpoint {previous}); pass --resume to '
                f'continue it, or --work-dir to start a new one elsewhere (nothing was changed)')
    else:
        checkpoint = args.resume if explicit_resume else launch.latest_checkpoint(work_dir)
        if checkpoint is None:
            print_log(f'--resume: no checkpoint in {work_dir} yet, training starts from the beginning',
                      logger='current', level=logging.WARNING)
        elif not explicit_resume:
            check_resumable(read_checkpoint(checkpoint), checkpoint)
        cfg.resume = checkpoint is not None
        cfg.load_from = checkpoint

    return cfg


def main(argv=None):
    args = parse_args(argv)
    launch.run_tool(lambda: build_config(args), lambda runner: runner.train())


if __name__ == '__main__':
    launch.run_as_program(main)
