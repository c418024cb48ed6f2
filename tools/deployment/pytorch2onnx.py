"""Export a VMamba image classifier to ONNX and check it with onnxruntime.

    python tools/deployment/pytorch2onnx.py configs/classification/vmamba-tiny_8xb128-300e_in1k.py \\
        vssm1_tiny_0230s_ckpt_epoch_264.pth --shape 224 224 --out vmamba-tiny.onnx --verify

The graph takes normalised images ``images`` of shape (1, 3, H, W) (the config's mean/std already
applied) and returns the class scores ``logits`` (1, num_classes). SS2D is exported as standard ONNX
operators: the kernels' torch reference (cross-scan, parallel selective scan, cross-merge) replaces
the custom ops while exporting. ``--verify`` runs the file with onnxruntime on random inputs and
compares with PyTorch (max |difference| must stay within ``--atol``).
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch


class ExportError(RuntimeError):
    """The exported model disagrees with PyTorch, or cannot be exported."""


def verify(model, path, shape, atol, trials=2, seed=0):
    """Max |onnxruntime - torch| over ``trials`` random inputs; raises ExportError beyond ``atol``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(trials):
        images = torch.randn(1, 3, *shape, generator=generator)
        with torch.no_grad():
            expected = model(images, mode='tensor').numpy()
        got, = session.run(['logits'], {'images': images.numpy()})
        worst = max(worst, float(np.abs(got - expected).max()))
    if not worst <= atol:
        raise ExportError(f'onnxruntime and PyTorch disagree: max |difference| {worst:.3g} > --atol {atol:g}')
    return worst


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='Export a VMamba classifier to ONNX.')
    parser.add_argument('config', help='classification config (mmpretrain)')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: random initialisation)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(224, 224),
                        help='input height and width (default: 224 224)')
    parser.add_argument('--out', default='model.onnx', help='output file (default: model.onnx)')
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset (default: 18)')
    parser.add_argument('--verify', action='store_true', help='compare onnxruntime with PyTorch on random inputs')
    parser.add_argument('--atol', type=float, default=1e-4, help='tolerance of --verify (default: 1e-4)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries')
    args = parser.parse_args(argv)
    if min(args.shape) < 32:
        parser.error(f'--shape {args.shape[0]} {args.shape[1]}: each side must be at least 32 (the backbone '
                     'downsamples 32x)')
    if not args.out.endswith('.onnx'):
        parser.error(f'--out {args.out}: name the output *.onnx')
    return args


def main(argv=None):
    args = parse_args(argv)
    from vmamba_mm import launch
    from vmamba_mm.analysis.models import build_model
    from vmamba_mm.analysis.onnx_export import export_classifier

    scope = launch.register_scope(launch.load_config(args.config, args.cfg_options))
    if scope != 'mmpretrain':
        raise launch.ConfigScopeError(f'{args.config} is an {scope} config; pytorch2onnx exports classifiers '
                                      "(default_scope='mmpretrain')")
    model = build_model(args.config, args.checkpoint, args.cfg_options)
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    export_classifier(model, args.shape, args.out, opset=args.opset)
    print(f'exported {args.out} ({osp.getsize(args.out) / 2**20:.2f} MiB) for inputs (1, 3, {args.shape[0]}, '
          f'{args.shape[1]})')
    if args.verify:
        difference = verify(model, args.out, args.shape, args.atol)
        print(f'onnxruntime matches PyTorch: max |difference| {difference:.3g} (atol {args.atol:g})')


if __name__ == '__main__':
    sys.exit(main())
