"""Prepare a checkpoint for release: keep the weights and metadata, drop the training state,
and name the file after its content.

    python tools/model_converters/publish_model.py work_dirs/vmamba-demo_digits/epoch_20.pth vmamba-demo.pth
    # -> vmamba-demo-<first 8 hex digits of the file's sha256>.pth

The optimizer, parameter schedulers and message hub (loss history, resume bookkeeping) are
removed; ``state_dict``, an EMA hook's ``ema_state_dict`` and ``meta`` are kept. Only the
file's own bytes decide the suffix: ``sha256sum OUT-xxxxxxxx.pth`` starts with ``xxxxxxxx``.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import tempfile

import torch

from vmamba_mm.launch import read_checkpoint

TRAINING_STATE = ('optimizer', 'param_schedulers', 'message_hub')


def strip_training_state(checkpoint: dict) -> dict:
    """The checkpoint without optimizer, scheduler and message hub entries."""
    if 'state_dict' not in checkpoint:
        raise ValueError(f"not an mmengine checkpoint: no 'state_dict' (top-level keys: {sorted(checkpoint)})")
    return {key: value for key, value in checkpoint.items() if key not in TRAINING_STATE}


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def publish(source: str, target: str) -> str:
    """Write the stripped checkpoint as ``<target stem>-<sha256[:8]>.pth``; returns that path.

    The file is written under a temporary name first, so no existing file is touched unless it
    has the very same content (and therefore name).
    """
    stem = target[:-len('.pth')] if target.endswith('.pth') else target
    checkpoint = strip_training_state(read_checkpoint(source))
    folder = osp.dirname(osp.abspath(stem))
    os.makedirs(folder, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f'.{osp.basename(stem)}.', suffix='.pth', dir=folder)
    os.close(handle)
    try:
        torch.save(checkpoint, staging)
        published = f'{stem}-{sha256_of(staging)[:8]}.pth'
        os.replace(staging, published)
    except BaseException:
        if osp.exists(staging):
            os.remove(staging)
        raise
    return published


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Strip training state from a checkpoint and add a sha256 suffix.')
    parser.add_argument('in_file', help='checkpoint written by tools/train.py')
    parser.add_argument('out_file', help='output name; the sha256 prefix is inserted before .pth')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    published = publish(args.in_file, args.out_file)
    print(f'published {published} ({osp.getsize(published) / 2**20:.2f} MiB)')


if __name__ == '__main__':
    sys.exit(main())
