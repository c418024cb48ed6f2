"""ONNX export of a VMamba classifier.

The SS2D ops of the ``kernels`` package are ``torch.library`` custom ops: ``torch.export`` keeps
them as opaque nodes that no ONNX runtime knows. Before translation to ONNX they are decomposed
into the kernels' own torch reference (cross-scan, chunked parallel scan, cross-merge) with
``kernels.reference_decompositions()``, which ``torch.export`` traces into standard aten ops. The
model itself is not changed.
"""
from typing import Sequence

import torch

import kernels
from vmamba_mm.analysis.models import ClassifierLogits


def export_classifier(classifier: torch.nn.Module, shape: Sequence[int], path: str, opset: int = 18):
    """Export ``classifier`` for (1, 3, H, W) inputs to ``path``; returns the exported program (torch)."""
    module = ClassifierLogits(classifier).eval()
    example = (torch.zeros(1, 3, *shape),)
    program = torch.export.export(module, example)
    table = torch.export.default_decompositions()
    table.update(kernels.reference_decompositions())
    program = program.run_decompositions(table)
    onnx_program = torch.onnx.export(program, example, input_names=['images'], output_names=['logits'],
                                     opset_version=opset, dynamo=True)
    onnx_program.save(path)
    return program
