"""Convert an official VMamba checkpoint (github MzeroMiko/VMamba) to a vmamba_mm one.

    python tools/model_converters/vmamba2mm.py vssm1_tiny_0230s_ckpt_epoch_264.pth \
        vmamba-tiny_in1k.pth --task cls --ema

``--task cls`` writes an mmpretrain ImageClassifier checkpoint (load it with ``load_from``),
``det``/``seg`` a backbone for mmdet/mmseg (the classifier is dropped; the neck and heads of
an official detection/segmentation checkpoint are kept). Conversion is strict: the backbone's
weights are loaded into a VMamba of the architecture they imply, and any key that does not fit
is named and nothing is written. SRC may be a path or an http(s) URL.
"""
import argparse
import os

import torch

from vmamba_mm.converters import infer_arch, official_to_mm
from vmamba_mm.loading import OUTNORMS_OPTIONAL, load_state_dict_strictly, read_checkpoint
from vmamba_mm.models import VMamba


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument('--task', choices=('cls', 'det', 'seg'), required=True)
    parser.add_argument('--ema', action='store_true', help="convert the 'model_ema' weights")
    args = parser.parse_args(argv)

    state_dict = official_to_mm(read_checkpoint(args.src), task=args.task, ema=args.ema)
    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    arch = infer_arch(backbone)
    load_state_dict_strictly(VMamba(arch=arch, out_indices=range(len(arch['depths']))), backbone,
                             optional=OUTNORMS_OPTIONAL)
    meta = dict(converted_from=os.path.basename(args.src), task=args.task, ema=args.ema, arch=arch)
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'{args.dst}: {len(state_dict)} tensors, VMamba arch {arch}')


if __name__ == '__main__':
    main()
