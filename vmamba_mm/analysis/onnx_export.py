"""ONNX export of a VMamba classifier.

The SS2D ops of the ``kernels`` package are ``torch.library`` custom ops: ``torch.export`` keeps
them as opaque nodes that no ONNX runtime knows. Before translation to ONNX they are decomposed
into the kernels' own torch reference (cross-scan, chunked parallel scan, cross-merge), which
``torch.export`` traces into standard aten ops. The model itself is not changed.
"""
from typing import Sequence

import torch

# Importing the package registers the custom ops under torch.ops.vmamba_kernels.
from kernels import reference, unfused_ss2d
from vmamba_mm.analysis.models import ClassifierLogits


def _ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last, out_fp32, backend):
    return unfused_ss2d.ss2d_forward(reference, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D,
                                     channels_last, out_fp32)


def _cross_scan(x, channels_last, backend):
    return reference.cross_scan(x, channels_last)


def _cross_merge(y, height, width, channels_last, backend):
    return reference.cross_merge(y, height, width, channels_last)


def _selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32, backend):
    return reference.selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, out_fp32)


def kernel_decompositions() -> dict:
    """The kernels' forward custom ops mapped to their torch reference, for ``run_decompositions``."""
    ops = torch.ops.vmamba_kernels
    return {
        ops.ss2d.default: _ss2d,
        ops.cross_scan.default: _cross_scan,
        ops.cross_merge.default: _cross_merge,
        ops.selective_scan.default: _selective_scan,
    }


def export_classifier(classifier: torch.nn.Module, shape: Sequence[int], path: str, opset: int = 18):
    """Export ``classifier`` for (1, 3, H, W) inputs to ``path``; returns the exported program (torch)."""
    module = ClassifierLogits(classifier).eval()
    example = (torch.zeros(1, 3, *shape),)
    program = torch.export.export(module, example)
    table = torch.export.default_decompositions()
    table.update(kernel_decompositions())
    program = program.run_decompositions(table)
    onnx_program = torch.onnx.export(program, example, input_names=['images'], output_names=['logits'],
                                     opset_version=opset, dynamo=True)
    onnx_program.save(path)
    return program
