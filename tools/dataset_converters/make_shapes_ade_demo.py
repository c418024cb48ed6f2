"""Write the segmentation demo: a small semantic-segmentation dataset in the ADE20K layout.

    python tools/dataset_converters/make_shapes_ade_demo.py [--out data/shapes_ade]

Layout (the same as ADEChallengeData2016's, so the ADE20K dataset config only needs a new
data root and class list):

    OUT/images/training/000000.jpg ...        OUT/annotations/training/000000.png ...
    OUT/images/validation/000000.jpg ...      OUT/annotations/validation/000000.png ...

Annotations are single-channel index PNGs labelled as ADE20K labels them: 0 is "other /
unlabelled" (here a thin band along every shape's outline), 1 is the textured background,
2, 3, 4 are circle, square, triangle. Loaded with `reduce_zero_label=True`, 0 becomes the
ignore index 255 and the classes become 0..3, exactly as for ADE20K.
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from shape_scenes import SHAPE_CLASSES, render_scene, scene_rng

CLASSES = ('background', ) + SHAPE_CLASSES
SPLITS = {'training': 'train', 'validation': 'val'}
UNLABELLED = 0
OUTLINE_WIDTH = 2


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {text}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path('data/shapes_ade'))
    parser.add_argument('--num-train', type=positive_int, default=160)
    parser.add_argument('--num-val', type=positive_int, default=40)
    parser.add_argument('--size', type=positive_int, default=128,
                        help='image height and width in pixels (at least 64)')
    parser.add_argument('--max-shapes', type=positive_int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 64:
        parser.error(f'--size must be at least 64 so shapes fit, got {args.size}')
    return args


def label_map(shapes, height: int, width: int) -> Image.Image:
    """ADE-style index map: background 1, shape class c at c + 2, outlines unlabelled."""
    labels = Image.new('L', (width, height), CLASSES.index('background') + 1)
    draw = ImageDraw.Draw(labels)
    for shape in shapes:
        draw.polygon([tuple(p) for p in shape.polygon], fill=shape.label + 2,
                     outline=UNLABELLED, width=OUTLINE_WIDTH)
    return labels


def main(argv=None) -> None:
    args = parse_args(argv)
    radius_range = (args.size * 0.1, args.size * 0.25)
    for ade_split, scene_split in SPLITS.items():
        image_dir = args.out / 'images' / ade_split
        label_dir = args.out / 'annotations' / ade_split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        count = args.num_train if ade_split == 'training' else args.num_val
        pixels = np.zeros(len(CLASSES) + 1, np.int64)
        for index in range(count):
            image, shapes = render_scene(scene_rng(args.seed, scene_split, index), args.size,
                                         args.size, args.max_shapes, radius_range)
            labels = label_map(shapes, args.size, args.size)
            image.save(image_dir / f'{index:06d}.jpg', quality=95)
            labels.save(label_dir / f'{index:06d}.png')
            pixels += np.bincount(np.asarray(labels).reshape(-1), minlength=len(pixels))
        share = ', '.join(f'{name} {p / pixels.sum():.1%}'
                          for name, p in zip(('unlabelled', ) + CLASSES, pixels))
        print(f'{ade_split}: {count} images ({share}) -> {args.out}')


if __name__ == '__main__':
    main()
