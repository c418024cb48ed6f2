"""Effective receptive field of a VMamba backbone, drawn like the paper's ERF figure.

    # before training (the config's random initialisation) only
    python tools/analysis_tools/erf.py configs/classification/vmamba-tiny_8xb128-300e_in1k.py --images val/
    # before and after training, side by side
    python tools/analysis_tools/erf.py CONFIG CHECKPOINT --images val/ --num-images 50 --size 1024 --out erf.png

For each image the gradient of the central position of a backbone output (summed over its
channels) with respect to the input is taken; its magnitude, summed over the colour channels, is
averaged over the images and drawn on a log scale (``--decades`` below the peak). Without
``--images`` the inputs are standard-normal noise in the model's normalised input space.
The printed area ratios are the smallest shares of the image holding 20/30/50/99% of the total
contribution (RepLKNet's measure): the larger, the more global the receptive field.
"""
import argparse
import sys

import torch

from vmamba_mm.analysis import figures
from vmamba_mm.analysis.images import list_images, normalize, read_rgb
from vmamba_mm.analysis.models import build_model, find_backbone
from vmamba_mm.analysis.receptive_field import area_ratios, effective_receptive_field, log_scale


def input_batch(model, args):
    """The normalised inputs: the images of --images, or seeded noise."""
    if args.images is None:
        generator = torch.Generator().manual_seed(args.seed)
        return [torch.randn(1, 3, args.size, args.size, generator=generator) for _ in range(args.num_images)]
    paths = list_images(args.images, args.num_images)
    return [normalize(model, read_rgb(path, (args.size, args.size))) for path in paths]


def measure(config, checkpoint, args):
    torch.manual_seed(args.seed)  # the same random initialisation for every call
    model = build_model(config, checkpoint, args.cfg_options)
    backbone = find_backbone(model)
    erf = effective_receptive_field(backbone, input_batch(model, args), stage=args.stage)
    ratios = area_ratios(erf)
    label = 'after training' if checkpoint else 'before training'
    print(f'{label}: area ratio ' + ', '.join(f't={t:.0%}: {r:.3f}' for t, r in ratios.items()))
    return label, erf


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='Effective receptive field of a VMamba backbone as a PNG.')
    parser.add_argument('config', help='model config (classification, detection or segmentation)')
    parser.add_argument('checkpoint', nargs='?', help='trained weights; when given, the map before training '
                        '(random initialisation) is drawn beside the one after')
    parser.add_argument('--images', help='folder of images (default: standard-normal noise inputs)')
    parser.add_argument('--num-images', type=int, default=8, help='images to average over (default: 8)')
    parser.add_argument('--size', type=int, default=224, help='input side length (default: 224)')
    parser.add_argument('--stage', type=int, default=-1,
                        help='which backbone output to take the central position of (default: the last)')
    parser.add_argument('--decades', type=float, default=3.0,
                        help='log-scale range below the peak shown (default: 3 decades)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='erf.png', help='output PNG (default: erf.png)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries')
    args = parser.parse_args(argv)
    if args.num_images < 1 or args.size < 32:
        parser.error('--num-images must be at least 1 and --size at least 32 (the backbone downsamples 32x)')
    return args


def main(argv=None):
    args = parse_args(argv)
    checkpoints = [None] if args.checkpoint is None else [None, args.checkpoint]
    panels = [measure(args.config, checkpoint, args) for checkpoint in checkpoints]
    figure = figures.heatmap_row([(label, log_scale(erf, args.decades)) for label, erf in panels],
                                 cmap='RdYlGn', panel_size=3.0)
    figure.suptitle(f'ERF, log10 scale over {args.decades:g} decades ({args.num_images} '
                    f'{"images" if args.images else "noise inputs"}, {args.size}x{args.size})',
                    fontsize='small', y=1.04)
    print(f'ERF map written to {figures.save(figure, args.out)}')


if __name__ == '__main__':
    sys.exit(main())
