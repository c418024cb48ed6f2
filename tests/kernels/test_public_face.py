"""kernels' public face: ``kernels/__init__.py`` is all that vmamba_mm may use, and it covers what vmamba_mm needs
(the ops, the backend names and choice, and the decompositions ONNX export needs)."""
import ast
import pkgutil
from pathlib import Path

import pytest
import torch

import kernels
from kernel_oracles import make_scan_inputs, make_ss2d_inputs

REPO = Path(__file__).resolve().parents[2]
SUBMODULES = {info.name for info in pkgutil.iter_modules(kernels.__path__)}


def kernels_submodule_imports(source: str):
    """(line, what) for every import of a kernels submodule in ``source``, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith('kernels.')]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith('kernels.'):
                found.append((node.lineno, f'from {node.module} import ...'))
            elif node.module == 'kernels':
                found += [(node.lineno, f'from kernels import {alias.name}') for alias in node.names
                          if alias.name in SUBMODULES]
    return found


def test_the_checker_finds_every_form_of_submodule_import():
    source = '''
import kernels
import kernels.dispatch
from kernels import ss2d, BACKENDS
from kernels import reference as ref
from kernels.ops import ss2d as op


def late():
    import kernels.triton_ss2d
    from kernels import checks
'''
    assert [line for line, _ in kernels_submodule_imports(source)] == [3, 5, 6, 10, 11]


def test_vmamba_mm_imports_only_the_kernels_package():
    offenders = []
    for path in sorted((REPO / 'vmamba_mm').rglob('*.py')):
        offenders += [f'{path.relative_to(REPO)}:{line}: {what}'
                      for line, what in kernels_submodule_imports(path.read_text())]
    assert not offenders, 'vmamba_mm must use only kernels/__init__.py:\n' + '\n'.join(offenders)


def test_public_names_exist():
    assert set(kernels.__all__) <= set(dir(kernels))
    assert kernels.BACKENDS == ('torch', 'triton')
    assert set(kernels.available_backends()) <= set(kernels.BACKENDS)


class AllOps(torch.nn.Module):

    def forward(self, x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, u, delta, A_scan, B, C):
        height, width = x.shape[2:]
        merged = kernels.cross_merge(kernels.cross_scan(x) * 2, height, width)
        y = kernels.ss2d(merged, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D)
        return y, kernels.selective_scan(u, delta, A_scan, B, C)


def _all_ops_args():
    ss2d_inputs = make_ss2d_inputs(1, 3, 4, 5, 2, 2)
    scan = make_scan_inputs(1, 2, 2, 3, 7)
    return (*ss2d_inputs.values(), *(scan[name] for name in ('u', 'delta', 'A', 'B', 'C')))


def _kernel_nodes(program):
    return [node for node in program.graph.nodes
            if node.op == 'call_function' and 'vmamba_kernels' in str(node.target)]


def test_reference_decompositions_leave_only_aten_ops():
    args = _all_ops_args()
    program = torch.export.export(AllOps(), args)
    assert len(_kernel_nodes(program)) == 4  # the ops are opaque nodes before decomposition
    assert set(kernels.reference_decompositions()) == {node.target for node in _kernel_nodes(program)}
    decomposed = program.run_decompositions(kernels.reference_decompositions())
    assert _kernel_nodes(decomposed) == []
    expected = AllOps()(*args)
    for got, want in zip(decomposed.module()(*args), expected):
        torch.testing.assert_close(got, want)


def test_ss2d_traced_with_triton_names_the_way_out():
    kernels.set_backend('triton')
    program = torch.export.export(AllOps(), _all_ops_args())
    with pytest.raises(ValueError, match=r"traced with the 'triton' backend.*set_backend\('torch'\)"):
        program.run_decompositions(kernels.reference_decompositions())
