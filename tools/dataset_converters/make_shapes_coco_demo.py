"""Write the detection demo: a small COCO-format instance dataset of shapes.

    python tools/dataset_converters/make_shapes_coco_demo.py [--out data/shapes_coco]

Layout (the same as COCO's, so the COCO dataset config only needs a new data root):

    OUT/annotations/instances_train2017.json   polygons, boxes, areas; categories 1..3
    OUT/annotations/instances_val2017.json     held-out split, different scenes
    OUT/train2017/000000.jpg ...
    OUT/val2017/000000.jpg ...

Every image is a pure function of (--seed, split, index), so reruns are identical.
"""
import argparse
import json
from pathlib import Path

from shape_scenes import SHAPE_CLASSES, render_scene, scene_rng

SPLITS = ('train', 'val')


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {text}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path('data/shapes_coco'))
    parser.add_argument('--num-train', type=positive_int, default=240)
    parser.add_argument('--num-val', type=positive_int, default=60)
    parser.add_argument('--size', type=positive_int, default=128,
                        help='image height and width in pixels (at least 64)')
    parser.add_argument('--max-shapes', type=positive_int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 64:
        parser.error(f'--size must be at least 64 so shapes fit, got {args.size}')
    return args


def write_split(args: argparse.Namespace, split: str, count: int) -> dict:
    image_dir = args.out / f'{split}2017'
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    radius_range = (args.size * 0.1, args.size * 0.22)
    for index in range(count):
        image, shapes = render_scene(scene_rng(args.seed, split, index), args.size, args.size,
                                     args.max_shapes, radius_range)
        file_name = f'{index:06d}.jpg'
        image.save(image_dir / file_name, quality=95)
        images.append(dict(id=index + 1, file_name=file_name,
                           height=args.size, width=args.size))
        for shape in shapes:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=index + 1, category_id=shape.label + 1,
                segmentation=[shape.flat_xy()], area=shape.area, bbox=shape.bbox_xywh,
                iscrowd=0))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(SHAPE_CLASSES)]
    return dict(info=dict(description=f'vmamba_mm shapes demo ({split}, seed {args.seed})'),
                images=images, annotations=annotations, categories=categories)


def main(argv=None) -> None:
    args = parse_args(argv)
    (args.out / 'annotations').mkdir(parents=True, exist_ok=True)
    for split, count in zip(SPLITS, (args.num_train, args.num_val)):
        coco = write_split(args, split, count)
        with open(args.out / 'annotations' / f'instances_{split}2017.json', 'w') as f:
            json.dump(coco, f)
        print(f'{split}: {len(coco["images"])} images, {len(coco["annotations"])} objects '
              f'-> {args.out}')


if __name__ == '__main__':
    main()
