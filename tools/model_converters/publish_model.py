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
import io
import os
import os.path as osp
import sys
import tempfile

import torch

from vmamba_mm.loading import read_checkpoint

TRAINING_STATE = ('optimizer', 'param_schedulers', 'message_hub')


def strip_training_state(checkpoint: dict) -> dict:
    """The checkpoint without optimizer, scheduler and message hub entries."""
    if 'state_dict' not in checkpoint:
        raise ValueError(f"not an mmengine checkpoint: no 'state_dict' (top-level keys: {sorted(checkpoint)})")
    return {key: value for key, value in checkpoint.items() if key not in TRAINING_STATE}


def publish(source: str, target: str) -> str:
    """Write the stripped checkpoint as ``<target stem>-<sha256[:8]>.pth``; returns that path.

    The bytes are serialised in memory (a file's name would otherwise end up inside torch's zip
    archive), so the same checkpoint always gets the same name; they reach the final name through
    a temporary file, so no existing file is touched unless it has the very same content.
    """
    stem = target[:-len('.pth')] if target.endswith('.pth') else target
    buffer = io.BytesIO()
    torch.save(strip_training_state(read_checkpoint(source)), buffer)
    content = buffer.getvalue()
    published = f'{stem}-{hashlib.sha256(content).hexdigest()[:8]}.pth'
    folder = osp.dirname(osp.abspath(published))
    os.makedirs(folder, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f'.{osp.basename(stem)}.', suffix='.pth', dir=folder)
    try:
        with os.fdopen(handle, 'wb') as file:
            file.write(content)
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
