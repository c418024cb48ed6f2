"""Draw what a config's training pipeline hands the model: each sample's image after the transforms (crops, flips,
colour changes) with its ground truth: the class (classification), the boxes and masks (detection), the label map
(segmentation). The task comes from the config's `default_scope`.

    python tools/analysis_tools/browse_dataset.py configs/detection/mask-rcnn_vmamba-demo_shapes.py \
        --output-dir browse --max 20
"""
import argparse
import sys

from mmengine.config import DictAction

import vmamba_mm  # noqa: F401 (compatibility shims, VMamba registration)
from vmamba_mm import launch
from vmamba_mm.apis import browse_dataset
from vmamba_mm.datasets import check_dataset_roots


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Draw a config's training samples as the model gets them.")
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', required=True, help='where the pictures go (one PNG per sample)')
    parser.add_argument('--max', type=int, metavar='N', help='draw the first N samples only (default: all)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
        help='override config entries, e.g. train_dataloader.dataset.data_root=data/shapes_coco/')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = launch.load_config(args.config, args.cfg_options)
        launch.register_scope(cfg)
        check_dataset_roots(cfg, ('train_dataloader', ))
        written = browse_dataset(cfg, args.output_dir, max_samples=args.max)
    except launch.USER_ERRORS + launch.RUN_ERRORS as error:
        sys.exit(f'{type(error).__name__}: {error}')
    print(f'\n{len(written)} pictures in {args.output_dir}')


if __name__ == '__main__':
    main()
