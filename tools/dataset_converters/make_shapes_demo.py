"""Write the shapes demo datasets for detection (COCO layout) and segmentation (ADE20K layout).

Each image shows one to ``--max-shapes`` circles, squares and triangles (random size, rotation,
shading and vivid colour, never overlapping) on a dull textured background. In the ADE20K layout
each class also has its own fill pattern (plain, striped, chequered) and band of hues (circles red
to yellow, squares green to cyan, triangles blue to purple): a small segmentation model trained
from scratch separates the classes by their outlines alone only after far more iterations than a
demo can afford, while the detector learns them from the outlines in minutes (and trains less
reliably on the patterned fills). The scenes need no download and every image is a pure function
of (``--seed``, split, index), so all machines get the same dataset::

    data/shapes_coco/                        python tools/dataset_converters/make_shapes_demo.py coco
    ├── annotations/instances_train2017.json polygons, boxes, areas; categories 1..3
    ├── annotations/instances_val2017.json   the held-out split (other scenes)
    ├── train2017/000000.jpg ...
    ├── val2017/000000.jpg ...
    └── manifest.json                        what was written, for re-runs

    data/shapes_ade/                         python tools/dataset_converters/make_shapes_demo.py ade
    ├── images/{training,validation}/000000.jpg ...
    ├── annotations/{training,validation}/000000.png ...
    └── manifest.json

The layouts are COCO's and ADEChallengeData2016's, so the COCO and ADE20K configs need only a
new data root and class list. Segmentation labels are stored as ADE20K stores them: 0 is
"unlabelled" (here a thin band along every outline), 1 the background, 2..4 circle, square,
triangle; with ``reduce_zero_label=True`` 0 becomes the ignore index 255 and the classes 0..3.

The files are written to a temporary sibling folder and moved into place at the end, so an
interrupted run leaves no half-written dataset; re-running with the same settings does nothing.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ('circle', 'square', 'triangle')
SEGMENTATION_CLASSES = ('background', ) + SHAPE_CLASSES
# Vertices of each shape's polygon; 40 make a circle whose polygon and rasterised mask agree
# to within a pixel at these sizes.
VERTICES = {'circle': 40, 'square': 4, 'triangle': 3}
HUE_BANDS = {'circle': 0.0, 'square': 0.33, 'triangle': 0.6}  # start of each class's hue band (of 1)
PATTERN_PERIOD = 12  # pixels per stripe / chequer cycle: resolved by stride-4 features
UNLABELLED = 0  # ADE20K's "other" label, ignored by reduce_zero_label
OUTLINE_WIDTH = 2
MIN_SIZE = 64
SPLITS = {'coco': ('train2017', 'val2017'), 'ade': ('training', 'validation')}


@dataclass(frozen=True)
class Shape:
    """One object of a scene: its class (index into SHAPE_CLASSES) and its outline."""

    label: int
    polygon: np.ndarray  # (V, 2) x, y in pixels, inside the image

    def bbox_xywh(self):
        (x0, y0), (x1, y1) = self.polygon.min(axis=0), self.polygon.max(axis=0)
        return [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)]

    def area(self):
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return round(float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))), 2)

    def xy(self):
        return [tuple(point) for point in self.polygon]


def regular_polygon(kind, center, radius, angle):
    """Vertices of a circle, square or triangle inscribed in the circle (center, radius)."""
    theta = angle + 2 * np.pi * np.arange(VERTICES[kind]) / VERTICES[kind]
    return np.stack([center[0] + radius * np.cos(theta), center[1] + radius * np.sin(theta)], axis=1)


def textured_background(rng, size):
    """Low-saturation blotches, stripes and grain (size x size x 3, float in 0..255)."""
    base = rng.uniform(60, 190) + rng.uniform(-20, 20, size=3)
    coarse = rng.integers(0, 256, size=(size // 16 + 2, size // 16 + 2, 3), dtype=np.uint8)
    blotches = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), np.float64) - 127.5
    yy, xx = np.mgrid[0:size, 0:size]
    direction, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
    stripes = np.sin(2 * np.pi * (xx * np.cos(direction) + yy * np.sin(direction)) / period)
    return (base + 0.25 * blotches + rng.uniform(5, 20) * stripes[..., None]
            + rng.normal(0, 6, size=(size, size, 1)))


def vivid_colour(rng, label, hue_bands):
    """A saturated, bright colour; its hue from the class's band (a fifth of the circle) or any."""
    hue = HUE_BANDS[SHAPE_CLASSES[label]] + rng.uniform(0, 0.2) if hue_bands else rng.uniform(0, 1)
    hsv = np.array([[[int(hue * 255), rng.integers(170, 256), rng.integers(150, 256)]]], np.uint8)
    return np.asarray(Image.fromarray(hsv, 'HSV').convert('RGB'), np.float64)[0, 0]


def fill_pattern(label, xx, yy, rng):
    """How far pixels (xx, yy) of a shape are blended towards white: nowhere for circles, every
    other stripe for squares, every other chequer for triangles. A change of chromaticity rather
    than of brightness, which the backbone's per-pixel LayerNorms would normalise away."""
    kind = SHAPE_CLASSES[label]
    if kind == 'circle':
        return np.zeros(len(xx))
    angle = rng.uniform(0, np.pi)
    u = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / PATTERN_PERIOD)
    if kind == 'triangle':
        u = u * np.sin(2 * np.pi * (-xx * np.sin(angle) + yy * np.cos(angle)) / PATTERN_PERIOD)
    return 0.6 * (u > 0)


def place_shapes(rng, size, max_shapes):
    """1..max_shapes non-overlapping shapes of radius 10-25 % of the image, fully inside it."""
    count = int(rng.integers(1, max_shapes + 1))
    shapes, discs = [], []
    for _ in range(50 * count):
        if len(shapes) == count:
            break
        radius = rng.uniform(0.10, 0.25) * size
        center = rng.uniform(radius, size - radius, size=2)
        if any(np.hypot(*(center - c)) < radius + r + OUTLINE_WIDTH for c, r in discs):
            continue
        label = int(rng.integers(len(SHAPE_CLASSES)))
        shapes.append(Shape(label, regular_polygon(SHAPE_CLASSES[label], center, radius, rng.uniform(0, 2 * np.pi))))
        discs.append((center, radius))
    return shapes


def scene_rng(seed, split, index):
    """The random stream of scene `index` of `split`: independent of how many scenes are made."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def render_scene(seed, split, index, size, max_shapes, class_cues=False):
    """The RGB image of scene `index` of `split` and its shapes; `class_cues` adds the class's fill
    pattern and hue band."""
    rng = scene_rng(seed, split, index)
    canvas = textured_background(rng, size)
    shapes = place_shapes(rng, size, max_shapes)
    for shape in shapes:
        mask = Image.new('L', (size, size), 0)
        ImageDraw.Draw(mask).polygon(shape.xy(), fill=1)
        yy, xx = np.nonzero(np.asarray(mask))
        # A linear shading gradient, so fills are not flat colour.
        offsets = np.stack([xx - xx.mean(), yy - yy.mean()], axis=1) / max(np.ptp(xx), np.ptp(yy), 1)
        shade = 1 + offsets @ rng.uniform(-0.25, 0.25, size=2)
        whiten = fill_pattern(shape.label, xx, yy, rng)[:, None] if class_cues else 0
        fill = (1 - whiten) * vivid_colour(rng, shape.label, class_cues) * shade[:, None] + whiten * 235
        canvas[yy, xx] = fill + rng.normal(0, 4, size=(len(yy), 1))
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), 'RGB'), shapes


def label_map(shapes, size):
    """ADE20K-style index map: background 1, shape class c at c + 2, outlines unlabelled (0)."""
    labels = Image.new('L', (size, size), SEGMENTATION_CLASSES.index('background') + 1)
    draw = ImageDraw.Draw(labels)
    for shape in shapes:
        draw.polygon(shape.xy(), fill=shape.label + 2, outline=UNLABELLED, width=OUTLINE_WIDTH)
    return labels


def write_coco(root, manifest):
    os.makedirs(os.path.join(root, 'annotations'))
    for split, count in zip(SPLITS['coco'], (manifest['num_train'], manifest['num_val'])):
        os.makedirs(os.path.join(root, split))
        images, annotations = [], []
        for index in range(count):
            image, shapes = render_scene(manifest['seed'], split, index, manifest['size'], manifest['max_shapes'])
            file_name = f'{index:06d}.jpg'
            image.save(os.path.join(root, split, file_name), quality=95)
            images.append(dict(id=index + 1, file_name=file_name, height=manifest['size'], width=manifest['size']))
            for shape in shapes:
                annotations.append(
                    dict(id=len(annotations) + 1, image_id=index + 1, category_id=shape.label + 1,
                         segmentation=[[round(float(v), 2) for v in shape.polygon.reshape(-1)]],
                         area=shape.area(), bbox=shape.bbox_xywh(), iscrowd=0))
        categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(SHAPE_CLASSES)]
        with open(os.path.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def write_ade(root, manifest):
    for split, count in zip(SPLITS['ade'], (manifest['num_train'], manifest['num_val'])):
        image_dir, label_dir = os.path.join(root, 'images', split), os.path.join(root, 'annotations', split)
        os.makedirs(image_dir)
        os.makedirs(label_dir)
        for index in range(count):
            image, shapes = render_scene(manifest['seed'], split, index, manifest['size'], manifest['max_shapes'],
                                         class_cues=True)
            image.save(os.path.join(image_dir, f'{index:06d}.jpg'), quality=95)
            label_map(shapes, manifest['size']).save(os.path.join(label_dir, f'{index:06d}.png'))


WRITERS = {'coco': write_coco, 'ade': write_ade}


def make_shapes_demo(layout, out, num_train, num_val, size=128, max_shapes=3, seed=0):
    """Write the `layout` ('coco' or 'ade') dataset to `out`; returns its manifest (a dict).

    Re-running with equal settings is a no-op; a different dataset already at `out` is an error.
    """
    if layout not in WRITERS:
        raise ValueError(f'unknown layout {layout!r}; choose one of {sorted(WRITERS)}')
    classes = SHAPE_CLASSES if layout == 'coco' else SEGMENTATION_CLASSES
    manifest = dict(source='vmamba_mm shapes demo', layout=layout, classes=list(classes), num_train=num_train,
                    num_val=num_val, size=size, max_shapes=max_shapes, seed=seed)
    manifest_path = os.path.join(out, 'manifest.json')
    if os.path.exists(out):
        if os.path.isfile(manifest_path):
            with open(manifest_path) as f:
                if json.load(f) == manifest:
                    return manifest
        raise FileExistsError(f'{out} exists and does not hold the {layout} shapes demo with these settings; '
                              f'remove it or choose another --out (nothing was written)')

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.shapes-', dir=parent)
    try:
        WRITERS[layout](staging, manifest)
        with open(os.path.join(staging, 'manifest.json'), 'w') as f:
            json.dump(manifest, f, indent=2)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Write the shapes demo dataset in the COCO or ADE20K layout.')
    parser.add_argument('layout', choices=sorted(WRITERS),
                        help='coco: instance boxes and polygons (detection); ade: index PNGs (segmentation)')
    parser.add_argument('--out', help='output folder (default: data/shapes_<layout>)')
    parser.add_argument('--num-train', type=int, default=240, help='training images (default: 240)')
    parser.add_argument('--num-val', type=int, default=60, help='held-out images (default: 60)')
    parser.add_argument('--size', type=int, default=128, help='image side in pixels (default: 128)')
    parser.add_argument('--max-shapes', type=int, default=3, help='most shapes per image (default: 3)')
    parser.add_argument('--seed', type=int, default=0, help='seed of every scene (default: 0)')
    args = parser.parse_args(argv)
    for name in ('num_train', 'num_val', 'max_shapes'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1, got {getattr(args, name)}')
    if args.size < MIN_SIZE:
        parser.error(f'--size must be at least {MIN_SIZE} pixels so the shapes stay visible, got {args.size}')
    args.out = args.out or f'data/shapes_{args.layout}'
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        manifest = make_shapes_demo(args.layout, args.out, args.num_train, args.num_val, args.size,
                                    args.max_shapes, args.seed)
    except FileExistsError as error:
        sys.exit(f'error: {error}')
    print(f"{args.layout} shapes demo in {args.out}: {manifest['num_train']} train / {manifest['num_val']} val "
          f"images of {args.size}x{args.size} px, classes {', '.join(manifest['classes'])}")


if __name__ == '__main__':
    main()
