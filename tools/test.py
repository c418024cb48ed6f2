"""Evaluate a checkpoint on a config's test set: classification (mmpretrain), detection (mmdet) or
segmentation (mmseg), chosen by the config's `default_scope`.

Checkpoints written by tools/train.py and official VMamba checkpoints (`{'model': ...}`, converted on
the fly) are both accepted, and loaded strictly: a checkpoint that does not fit the config's model is an
IncompatibleCheckpointError listing the keys, before anything is evaluated. With an EMA hook in the config,
the EMA weights are evaluated and, where the hook asks for it, the raw weights too (their metrics carry an
`_origin` suffix).

    python tools/test.py configs/classification/vmamba-demo_digits.py work_dirs/vmamba-demo_digits/epoch_12.pth
    python tools/test.py configs/classification/vmamba-tiny_8xb128-300e_in1k.py vssm1_tiny_0230s_ckpt_epoch_264.pth
    python tools/test.py CONFIG CHECKPOINT --show-dir pictures   # also draw every test image's prediction
"""
import argparse

from mmengine.config import ConfigDict, DictAction

import vmamba_mm  # noqa: F401 (compatibility shims, VMamba registration)
from vmamba_mm import launch
from vmamba_mm.datasets import check_data_pipelines, check_dataset_roots
from vmamba_mm.loading import official_checkpoint, read_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test a VMamba checkpoint (mmpretrain, mmdet or mmseg, from the config\'s default_scope).')
    parser.add_argument('config', help='config file the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint: from tools/train.py, or an official VMamba release')
    parser.add_argument('--work-dir', help='where logs go (default: work_dirs/<config name>)')
    parser.add_argument('--out', metavar='FILE.pkl', help='also dump every prediction to this pickle file')
    parser.add_argument(
        '--show-dir', metavar='DIR',
        help='draw the prediction of every test image into DIR (class and score; boxes and masks; the '
        'segmentation overlay under DIR/vis_data/vis_image)')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation with the config's tta_model and tta_pipeline")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
        help='override config entries, e.g. test_dataloader.batch_size=16')
    return launch.parse_with_launcher(parser, argv)


def use_tta(cfg, config_path):
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ValueError(f'--tta needs {" and ".join(missing)} in {config_path}')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)


def build_config(args):
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {args.out}: predictions are written as a pickle, name it *.pkl')
    cfg = launch.load_config(args.config, args.cfg_options)
    if args.tta:
        use_tta(cfg, args.config)
    launch.register_scope(cfg)
    check_dataset_roots(cfg, ('test_dataloader', ))
    check_data_pipelines(cfg, ('test_dataloader', ))
    # Read now for a clear error before anything is built; the runner loads it strictly.
    official = official_checkpoint(read_checkpoint(args.checkpoint))
    cfg.launcher = args.launcher
    launch.resolve_work_dir(cfg, args.work_dir, args.config)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if official:
        # An official checkpoint converts to one set of weights (its `model`): an EMA hook would only
        # evaluate the same weights a second time.
        cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', []) if hook['type'] != 'EMAHook']

    if args.show_dir is not None:
        launch.enable_show_dir(cfg, args.show_dir)
    if args.out is not None:
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, dict(type='DumpResults', out_file_path=args.out)]
    return cfg


def report(runner, metrics):
    """One `name: value` line per metric, the raw-weight (`_origin`) ones of an EMA run included."""
    results = dict(metrics)
    results.update({name[len('test/'):]: buffer.current() for name, buffer in runner.message_hub.log_scalars.items()
                    if name.startswith('test/') and name.endswith('_origin')})
    for name, value in results.items():
        print(f'{name}: {value:.4f}' if isinstance(value, float) else f'{name}: {value}')


def main(argv=None):
    args = parse_args(argv)

    def test_and_report(runner):
        metrics = runner.test()
        if runner.rank == 0:
            report(runner, metrics)

    launch.run_tool(lambda: build_config(args), test_and_report)


if __name__ == '__main__':
    launch.run_as_program(main)
