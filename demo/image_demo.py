"""Predict an image (or a folder of images) with a vmamba_mm config and checkpoint and draw the prediction:
the class and its score (classification), the boxes and masks (detection), the segmentation overlay
(segmentation). The task comes from the config's `default_scope`; the checkpoint loads strictly (official VMamba
checkpoints are converted).

    python demo/image_demo.py data/digits/val/3/0001.png configs/classification/vmamba-demo_digits.py \
        work_dirs/vmamba-demo_digits/epoch_12.pth --out-file digit.png
    python demo/image_demo.py data/shapes_coco/val2017 configs/detection/mask-rcnn_vmamba-demo_shapes.py \
        work_dirs/mask-rcnn_vmamba-demo_shapes/epoch_4.pth --out-dir shapes_pictures
"""
import argparse
import sys

import vmamba_mm  # noqa: F401 (compatibility shims, VMamba registration)
from vmamba_mm.apis import image_demo
from vmamba_mm.launch import USER_ERRORS, RUN_ERRORS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw a VMamba model\'s prediction for an image (mmpretrain, mmdet '
                                     'or mmseg, from the config\'s default_scope).')
    parser.add_argument('image', help='image file, or a folder of images')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint: from tools/train.py, or an official VMamba release')
    parser.add_argument('--out-file', help='where the picture of IMAGE goes (a file name with an image suffix)')
    parser.add_argument('--out-dir', help='where the pictures go when IMAGE is a folder (one PNG per image)')
    parser.add_argument('--device', help='cpu, cuda, cuda:1, ... (default: the GPU when there is one)')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: lowest score drawn (default: 0.3)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        results = image_demo(args.image, args.config, args.checkpoint, out_file=args.out_file, out_dir=args.out_dir,
                             device=args.device, score_thr=args.score_thr)
    except USER_ERRORS + RUN_ERRORS as error:
        sys.exit(f'{type(error).__name__}: {error}')
    for image, picture, summary in results:
        print(f'{image}: {summary} -> {picture}')


if __name__ == '__main__':
    main()
