"""What autograd keeps for the backward of one training forward, per module type, in bytes per image.

    python tools/analysis_tools/saved_activations.py --models vmamba-tiny --precision bf16 \
        --batch-size 2 --resolution 224 --device cpu --kernel-backend torch --json saved.json

Models as in benchmark.py (``vmamba_mm.analysis.measured_models``): `vmamba-<arch>` (an arch name or a
dict literal; the official classifier head), a classification config file, `timm:<name>` or
`official:<function>`. The forward runs in training mode under the chosen precision (fp32, or bf16/fp16
autocast; bf16 works on the CPU), with gradients on, and no backward is run.

Every tensor handed to autograd for the backward passes `torch.autograd.graph.saved_tensors_hooks`.
The tool counts each storage once (by `untyped_storage().data_ptr()`, the whole storage, since a
saved view keeps all of it alive), leaves out the model's parameters and buffers, and charges the
storage to the innermost module whose forward was running when it was first saved (forward pre/post
hooks keep the stack). A storage saved by several modules (the residual stream saved by a LayerNorm
and by a later op, say) is charged to the first.

Saved bytes are linear in the batch: the forward runs at `--batch-size` B and at 2B, and
`per image` is their difference over B; the rest, `fixed`, does not grow with the batch (autocast's
half copies of the weights, tensors computed from parameters only). Peak training memory on a GPU
is about batch x per image + fixed + parameters, gradients and optimizer state, + the largest
transient buffers of the backward, which this tool does not see. Checkpointed blocks
(`with_cp`) keep their tensors through checkpoint's own hooks, which this tool does not see either.
"""
import argparse
import contextlib
import json
from collections import defaultdict

import torch
from torch import nn

from vmamba_mm.analysis.measured_models import PRECISIONS, build_model, fallback_is_an_error

OUTSIDE = '(no module)'


class SavedTensorLedger:
    """Records the storages autograd saves while active, each once, with the module type that saved it.

    ``with SavedTensorLedger(model) as ledger: model(x)``; then ``ledger.rows()``. It holds a reference
    to every recorded storage until it is closed, so a freed storage's address cannot be counted again
    for another one (autograd keeps them alive anyway until the backward).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.excluded = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
        self.names = {module: name for name, module in model.named_modules()}
        self.storages = {}  # data_ptr -> (storage, module type, dtype, module name, shape)
        self.stack = []
        self.handles = []
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda tensor: tensor)

    def __enter__(self):
        for module in self.model.modules():
            self.handles.append(module.register_forward_pre_hook(self.enter_module))
            self.handles.append(module.register_forward_hook(self.leave_module, always_call=True))
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.stack.clear()
        return False

    def enter_module(self, module, args):
        self.stack.append(module)

    def leave_module(self, module, args, output):
        self.stack.pop()

    def pack(self, tensor):
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage (subclasses)
            return tensor
        pointer = storage.data_ptr()
        if storage.nbytes() and pointer not in self.excluded and pointer not in self.storages:
            module = self.stack[-1] if self.stack else None
            module_type = type(module).__name__ if module is not None else OUTSIDE
            name = self.names.get(module, '?') if module is not None else ''
            self.storages[pointer] = (storage, module_type, tensor.dtype, name, tuple(tensor.shape))
        return tensor

    def rows(self) -> dict:
        """{module type: {'tensors': n, 'bytes': total, 'by_dtype': {dtype name: bytes}}}"""
        rows = defaultdict(lambda: dict(tensors=0, bytes=0, by_dtype=defaultdict(int)))
        for storage, module_type, dtype, _, _ in self.storages.values():
            row = rows[module_type]
            row['tensors'] += 1
            row['bytes'] += storage.nbytes()
            row['by_dtype'][dtype_name(dtype)] += storage.nbytes()
        return {key: dict(row, by_dtype=dict(row['by_dtype'])) for key, row in rows.items()}

    def largest(self, count: int) -> list:
        """The ``count`` largest storages: (bytes, module name, module type, dtype, shape of the saved tensor)."""
        entries = [(storage.nbytes(), name, module_type, dtype_name(dtype), shape)
                   for storage, module_type, dtype, name, shape in self.storages.values()]
        return sorted(entries, key=lambda entry: entry[0], reverse=True)[:count]


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: 'fp32', torch.float16: 'fp16', torch.bfloat16: 'bf16'}.get(dtype, str(dtype)[6:])


def saved_in_forward(model: nn.Module, images: torch.Tensor, precision: str, top: int = 0):
    """(rows, largest): :meth:`SavedTensorLedger.rows` and the ``top`` largest storages of one training
    forward of ``model`` on ``images``."""
    dtype = PRECISIONS[precision]
    model.train()
    autocast = torch.autocast(images.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with torch.enable_grad(), SavedTensorLedger(model) as ledger, autocast:
        output = model(images)
    result = ledger.rows(), ledger.largest(top)
    del output, ledger
    return result


def per_image(model: nn.Module, batch_size: int, resolution: int, precision: str, device, top: int = 0):
    """(rows, largest): saved bytes per image and fixed, per module type, from forwards at ``batch_size``
    and twice it; and the ``top`` largest storages at ``batch_size``."""
    measured = []
    for batch in (batch_size, 2 * batch_size):
        images = torch.randn(batch, 3, resolution, resolution, device=device)
        measured.append(saved_in_forward(model, images, precision, top if batch == batch_size else 0))
    (small, largest), (large, _) = measured
    rows = {}
    for module_type in sorted(set(small) | set(large)):
        a = small.get(module_type, dict(tensors=0, bytes=0, by_dtype={}))
        b = large.get(module_type, dict(tensors=0, bytes=0, by_dtype={}))
        dtypes = sorted(set(a['by_dtype']) | set(b['by_dtype']))
        growth = {d: (b['by_dtype'].get(d, 0) - a['by_dtype'].get(d, 0)) / batch_size for d in dtypes}
        rows[module_type] = dict(
            tensors=a['tensors'],
            bytes_per_image=(b['bytes'] - a['bytes']) / batch_size,
            fixed_bytes=2 * a['bytes'] - b['bytes'],
            bytes_at_batch=a['bytes'],
            per_image_by_dtype={d: value for d, value in growth.items() if value})
    return rows, largest


def totals(rows: dict) -> dict:
    return dict(
        tensors=sum(row['tensors'] for row in rows.values()),
        bytes_per_image=sum(row['bytes_per_image'] for row in rows.values()),
        fixed_bytes=sum(row['fixed_bytes'] for row in rows.values()),
        bytes_at_batch=sum(row['bytes_at_batch'] for row in rows.values()))


def format_table(spec: str, precision: str, batch_size: int, resolution: int, rows: dict) -> str:
    total = totals(rows)
    lines = [f'# {spec} | {precision} | batch {batch_size} (and {2 * batch_size}) | {resolution}x{resolution} | '
             f'torch {torch.__version__}',
             f"{'module type':<24} {'tensors':>8} {'MB/image':>10} {'share':>6} {'fixed MB':>9}  per image by dtype"]
    order = sorted(rows, key=lambda key: rows[key]['bytes_per_image'], reverse=True)
    for key in order + ['total']:
        row = total if key == 'total' else rows[key]
        share = row['bytes_per_image'] / total['bytes_per_image'] if total['bytes_per_image'] else 0.0
        split = ', '.join(f'{d} {v / 1e6:.2f}' for d, v in row.get('per_image_by_dtype', {}).items())
        lines.append(f"{key:<24} {row['tensors']:>8} {row['bytes_per_image'] / 1e6:>10.2f} {100 * share:>5.1f}% "
                     f"{row['fixed_bytes'] / 1e6:>9.2f}  {split}")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=['vmamba-tiny'])
    parser.add_argument('--precision', choices=sorted(PRECISIONS), default='bf16',
                        help='fp32, or autocast to bf16/fp16 (default bf16; fp16 autocast needs a GPU on most CPUs)')
    parser.add_argument('--batch-size', type=int, default=2, help='B: the forward runs at B and 2B images')
    parser.add_argument('--resolution', type=int, default=224)
    parser.add_argument('--kernel-backend', choices=['torch', 'triton'], default=None,
                        help="SS2D backend (default: automatic; 'torch' on a CPU; a silent fallback is an error)")
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--top', type=int, default=0, metavar='N',
                        help='also list the N largest saved storages (module, dtype, shape) at --batch-size')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='write the rows here')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be at least 1')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda requested but no CUDA device is visible')
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    results = []
    for spec in args.models:
        torch.manual_seed(args.seed)
        with fallback_is_an_error(args.kernel_backend):
            model = build_model(spec, args.kernel_backend).to(device)
            rows, largest = per_image(model, args.batch_size, args.resolution, args.precision, device, args.top)
        del model
        print(format_table(spec, args.precision, args.batch_size, args.resolution, rows), flush=True)
        if largest:
            print(f'# the {len(largest)} largest saved storages at batch {args.batch_size}:')
            for size, name, module_type, dtype, shape in largest:
                print(f'{size / 1e6:>10.2f} MB  {dtype:<5} {str(list(shape)):<24} {name or OUTSIDE} ({module_type})')
        results.append(dict(model=spec, precision=args.precision, batch_size=args.batch_size,
                            resolution=args.resolution, rows=rows, total=totals(rows),
                            largest=[dict(bytes=size, module=name, module_type=module_type, dtype=dtype,
                                          shape=list(shape)) for size, name, module_type, dtype, shape in largest]))
    if args.json:
        with open(args.json, 'w') as file:
            json.dump(dict(torch=torch.__version__, device=str(device), results=results), file, indent=1)
    return results


if __name__ == '__main__':
    main()
