"""SS2D's implicit attention ("activation map") for one query position, per scan direction.

    python tools/analysis_tools/activation_map.py configs/classification/vmamba-tiny_8xb128-300e_in1k.py \\
        vssm1_tiny_0230s_ckpt_epoch_264.pth --image dog.jpg --stage 2 --block 3 --query 120 96 --out attn.png

The selective scan of SS2D is a causal linear map along each scan path: y_t = Σ_{s≤t} w_ts u_s with
w_ts = C_t·(Π_{s<r≤t} exp(Δ_r A)) Δ_s B_s per channel (the paper's (Q⊙w)(K/w)ᵀ view, see
``vmamba_mm/analysis/implicit_attention.py``). For the block's SS2D on this image, the figure shows
the weights of the query (given in input-image pixels, row then column) over all source positions,
averaged over channels in magnitude, for each of the 4 scan directions and for their merged sum,
each normalised to its maximum. Positions a direction has not reached yet get no weight.
"""
import argparse
import sys

import torch
import torch.nn.functional as F

from vmamba_mm.analysis import figures
from vmamba_mm.analysis.images import normalize, read_rgb
from vmamba_mm.analysis.implicit_attention import attention_weights, direction_maps, scan_inputs
from vmamba_mm.analysis.models import build_model, find_backbone

DIRECTION_NAMES = ('row-major', 'column-major', 'row-major reversed', 'column-major reversed', 'all 4 merged')


def select_block(backbone, stage, block):
    if not 0 <= stage < len(backbone.stages):
        raise IndexError(f'--stage {stage}: the backbone has stages 0..{len(backbone.stages) - 1}')
    blocks = backbone.stages[stage].blocks
    if not 0 <= block < len(blocks):
        raise IndexError(f'--block {block}: stage {stage} has blocks 0..{len(blocks) - 1}')
    return blocks[block]


def scanned_activation(backbone, block, image):
    """The activation SS2D scans in ``block`` for ``image``: SiLU of its depthwise conv output, (D, H, W)."""
    captured = []
    handle = block.ssm.conv.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.no_grad():
            backbone(image)
    finally:
        handle.remove()
    return F.silu(captured[0][0]).permute(2, 0, 1)  # the conv works on (B, H, W, D) features


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='SS2D implicit attention of a query position, per scan direction.')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', help='trained weights (default: random initialisation)')
    parser.add_argument('--image', required=True, help='input image')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'), default=(224, 224),
                        help='the image is resized to this (default: 224 224)')
    parser.add_argument('--stage', type=int, default=2, help='backbone stage (default: 2)')
    parser.add_argument('--block', type=int, default=0, help='block within the stage (default: 0)')
    parser.add_argument('--query', type=int, nargs=2, metavar=('ROW', 'COL'), required=True,
                        help='query position in pixels of the resized image')
    parser.add_argument('--out', default='activation_map.png', help='output PNG (default: activation_map.png)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries')
    args = parser.parse_args(argv)
    height, width = args.size
    if not (0 <= args.query[0] < height and 0 <= args.query[1] < width):
        parser.error(f'--query {args.query[0]} {args.query[1]} is outside the {height}x{width} image')
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    model = build_model(args.config, args.checkpoint, args.cfg_options)
    backbone = find_backbone(model)
    block = select_block(backbone, args.stage, args.block)
    rgb = read_rgb(args.image, args.size)
    u = scanned_activation(backbone, block, normalize(model, rgb))

    height, width = args.size
    grid_height, grid_width = u.shape[1:]
    row, col = args.query[0] * grid_height // height, args.query[1] * grid_width // width
    maps = direction_maps(attention_weights(scan_inputs(block.ssm, u), row * grid_width + col))
    maps = maps / maps.flatten(1).amax(dim=1).clamp_min(torch.finfo(maps.dtype).tiny)[:, None, None]
    figure = figures.heatmap_row(
        list(zip(DIRECTION_NAMES, maps.numpy())), cmap='viridis', image=rgb,
        marker=((row + 0.5) / grid_height, (col + 0.5) / grid_width))
    figure.suptitle(f'SS2D implicit attention, stage {args.stage} block {args.block} '
                    f'({grid_height}x{grid_width} tokens), query at token ({row}, {col})', fontsize='small', y=1.04)
    print(f'activation maps written to {figures.save(figure, args.out)}')


if __name__ == '__main__':
    sys.exit(main())
