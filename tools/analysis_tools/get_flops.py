"""Parameters and FLOPs of a VMamba model, counted as in the VMamba paper.

    python tools/analysis_tools/get_flops.py tiny                       # classifier, 224 x 224
    python tools/analysis_tools/get_flops.py vanilla-base --shape 384 384
    python tools/analysis_tools/get_flops.py configs/classification/vmamba-tiny_8xb128-300e_in1k.py
    python tools/analysis_tools/get_flops.py configs/segmentation/upernet_vmamba-tiny_8xb2-160k_ade20k-512x512.py \
        --shape 512 2048

The first argument is a VMamba arch name (an mmpretrain ImageClassifier with the
1000-class head, like the paper's tables) or a config file (mmpretrain, mmdet or mmseg,
picked by its ``default_scope``). ``--shape H W`` defaults to 224 224 for classifiers,
800 1280 for detectors and 512 2048 for segmentors.

Counting follows fvcore, which the paper uses, through ``mmengine.analysis.FlopAnalyzer``:
one multiply-add is one FLOP, elementwise ops (activations, additions, exp, softplus) are
free, and convolutions, linear layers, matmuls, norms and pooling get the standard handlers.
The SS2D core is a single ``kernels`` op, so it gets its own handler: the per-direction
projections (x_proj D -> R+2N and dt_proj R -> D, 1x1 convolutions in the official code)
plus the selective scan, ``9 * B * L * Dtot * N + B * Dtot * L`` over ``Dtot = 4 * D``
channels (the count the paper uses, from issue #110 of the mamba-ssm repository).

Models run in ``tensor`` mode on one random image with seeded random weights. A detector's
RoI heads see however many proposals those weights produce (the paper's Mask R-CNN numbers
are reproduced this way, but they are not a property of the architecture alone).
"""
import argparse
import functools
import math

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape

import vmamba_mm.registry  # noqa: F401  (applies vmamba_mm's compat shims and registers VMamba)
from vmamba_mm.models import VMamba

DEFAULT_SHAPES = {'mmpretrain': (224, 224), 'mmdet': (800, 1280), 'mmseg': (512, 2048)}
KERNEL_OPS = 'vmamba_kernels'  # torch.library namespace of the kernels package's ops


def selective_scan_flops(batch: int, channels: int, length: int, state: int) -> int:
    """The paper's count for a selective scan over ``channels`` sequences of ``length``."""
    return 9 * batch * length * channels * state + batch * channels * length


def selective_scan_flop_jit(inputs, outputs) -> int:
    """``selective_scan(u (B, Dtot, L), delta, A (Dtot, N), ...)``."""
    batch, channels, length = get_shape(inputs[0])
    state = get_shape(inputs[2])[1]
    return selective_scan_flops(batch, channels, length, state)


def ss2d_flop_jit(inputs, outputs) -> int:
    """``ss2d(x, x_proj_weight (K, R+2N, D), dt_proj_weight (K, D, R), ...)``."""
    x_shape, (directions, projected, inner), (_, _, rank) = (get_shape(v) for v in inputs[:3])
    batch = x_shape[0]
    length = math.prod(x_shape) // (batch * inner)
    state = (projected - rank) // 2
    projections = batch * length * directions * inner * (projected + rank)
    return projections + selective_scan_flops(batch, directions * inner, length, state)


SS2D_FLOP_HANDLES = {
    f'{KERNEL_OPS}::ss2d': ss2d_flop_jit,
    f'{KERNEL_OPS}::selective_scan': selective_scan_flop_jit,
    f'{KERNEL_OPS}::cross_scan': None,  # data movement
    f'{KERNEL_OPS}::cross_merge': None,  # additions: elementwise
}


def count_flops(model: torch.nn.Module, inputs: tuple) -> FlopAnalyzer:
    """A FlopAnalyzer over ``model(*inputs)`` that knows the SS2D ops."""
    analyzer = FlopAnalyzer(model, inputs).set_op_handle(**SS2D_FLOP_HANDLES)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer


def classifier_config(arch: str, num_classes: int = 1000) -> dict:
    """The mmpretrain classifier of the paper: backbone, last-stage norm, average pool, linear."""
    settings = VMamba.parse_arch(arch)
    last_dims = VMamba.stage_dims(settings['dims'], len(settings['depths']))[-1]
    return dict(
        type='ImageClassifier',
        backbone=dict(type='VMamba', arch=arch, out_indices=(-1, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=last_dims))


def build_model(config_or_arch: str):
    """(model, default scope) from a config file or an arch name."""
    if config_or_arch.endswith('.py'):
        from vmamba_mm.analysis.models import build_model as build_config_model
        from vmamba_mm.launch import load_config
        # Built without init_weights(): FLOPs do not depend on pretrained weights.
        return build_config_model(config_or_arch), load_config(config_or_arch).default_scope
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    return MODELS.build(classifier_config(config_or_arch)), 'mmpretrain'


def model_inputs(model, scope: str, shape: tuple) -> tuple:
    """Inputs for ``model`` in tensor mode at ``shape`` (H, W); detectors get their image
    metadata bound to ``forward``, since only tensors can pass through the tracer."""
    images = torch.randn(1, 3, *shape)
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape, scale_factor=(1., 1.))
        model.forward = functools.partial(model.forward, data_samples=[DetDataSample(metainfo=meta)], mode='tensor')
    return (images, )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config_or_arch', help=f'config file or VMamba arch ({", ".join(VMamba.arch_zoo)})')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), help='input size')
    args = parser.parse_args(argv)

    torch.manual_seed(0)  # a detector's proposal count depends on its weights: keep runs repeatable
    model, scope = build_model(args.config_or_arch)
    model.eval()
    shape = tuple(args.shape) if args.shape else DEFAULT_SHAPES.get(scope, DEFAULT_SHAPES['mmpretrain'])
    params = parameter_count(model)['']
    with torch.no_grad():
        flops = count_flops(model, model_inputs(model, scope, shape)).total()
    print(f'model:  {args.config_or_arch} ({type(model).__name__}, {scope})')
    print(f'input:  1 x 3 x {shape[0]} x {shape[1]}')
    print(f'params: {params:,} ({params / 1e6:.2f} M)')
    print(f'FLOPs:  {flops / 1e9:.3f} G')
    return params, flops


if __name__ == '__main__':
    main()
