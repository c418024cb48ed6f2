"""Write scikit-learn's handwritten digits as a small ImageNet-style dataset for the classification demo.

scikit-learn ships the 1,797 8x8 digit scans (10 classes) inside the package, so the demo needs no
download. Each scan is upsampled (bicubic) to ``--size`` pixels and saved as a grayscale PNG in the
folder-per-class layout that mmpretrain's ``CustomDataset`` / ``ImageNet`` read::

    data/digits/
    ├── train/0/0000.png ... train/9/...   (80 % of each class)
    ├── val/0/0007.png   ... val/9/...     (the held-out 20 %)
    └── manifest.json                      (what was written, for re-runs)

The split is stratified and fixed by ``--seed``, so every machine gets the same images. The files are
written to a temporary sibling folder and moved into place at the end: an interrupted run leaves
no half-written dataset behind. Running the tool again with the same settings does nothing.

    python tools/dataset_converters/make_digits_demo.py            # -> data/digits
    python tools/dataset_converters/make_digits_demo.py --size 64 --out data/digits64
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

SCAN_LEVELS = 16  # the digit scans count ink in 4x4 blocks: values 0..16


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write scikit-learn's digits as an ImageNet-style folder-per-class dataset.")
    parser.add_argument('--out', default='data/digits', help='output folder (default: data/digits)')
    parser.add_argument('--size', type=int, default=32, help='side of the written images in pixels (default: 32)')
    parser.add_argument('--val-fraction', type=float, default=0.2,
                        help='fraction of each class held out for validation (default: 0.2)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the train/val split (default: 0)')
    args = parser.parse_args(argv)
    if args.size < 8:
        parser.error(f'--size must be at least the scans\' 8 pixels, got {args.size}')
    if not 0 < args.val_fraction < 1:
        parser.error(f'--val-fraction must lie strictly between 0 and 1, got {args.val_fraction}')
    return args


def split_indices(labels, val_fraction, seed):
    """Stratified, seeded split: the same `val_fraction` of every class goes to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        num_val = int(round(len(members) * val_fraction))
        val.extend(members[:num_val])
        train.extend(members[num_val:])
    return np.sort(train), np.sort(val)


def to_image(scan, size):
    pixels = np.clip(np.round(scan * (255 / SCAN_LEVELS)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode='L').resize((size, size), Image.BICUBIC)


def make_digits_demo(out, size=32, val_fraction=0.2, seed=0):
    """Write the dataset to `out`; returns its manifest (a dict). Re-running with equal settings is a no-op."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    train, val = split_indices(digits.target, val_fraction, seed)
    manifest = dict(source='sklearn.datasets.load_digits', size=size, val_fraction=val_fraction, seed=seed,
                    classes=[str(c) for c in digits.target_names], num_train=len(train), num_val=len(val))

    manifest_path = os.path.join(out, 'manifest.json')
    if os.path.exists(out):
        if os.path.isfile(manifest_path):
            with open(manifest_path) as f:
                if json.load(f) == manifest:
                    return manifest
        raise FileExistsError(
            f'{out} exists and does not hold the digits demo with these settings; '
            f'remove it or choose another --out (nothing was written)')

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.digits-', dir=parent)
    try:
        for split, indices in (('train', train), ('val', val)):
            for index in indices:
                folder = os.path.join(staging, split, str(digits.target[index]))
                os.makedirs(folder, exist_ok=True)
                to_image(digits.images[index], size).save(os.path.join(folder, f'{index:04d}.png'))
        with open(os.path.join(staging, 'manifest.json'), 'w') as f:
            json.dump(manifest, f, indent=2)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def main(argv=None):
    args = parse_args(argv)
    try:
        manifest = make_digits_demo(args.out, args.size, args.val_fraction, args.seed)
    except FileExistsError as error:
        sys.exit(f'error: {error}')
    print(f"digits demo in {args.out}: {manifest['num_train']} train / {manifest['num_val']} val images, "
          f"{len(manifest['classes'])} classes, {args.size}x{args.size} px")


if __name__ == '__main__':
    main()
