"""setup.cfg declares what the package imports, and requirements.txt pulls in every requirements/ file."""
import ast
import configparser
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ('vmamba_mm', 'kernels')
# Import names whose distribution is named otherwise.
DISTRIBUTIONS = {'yaml': 'pyyaml', 'PIL': 'pillow', 'mmseg': 'mmsegmentation', 'sklearn': 'scikit-learn',
                 'cv2': 'opencv-python'}


def requirement_names(block):
    names = set()
    for line in block.splitlines():
        line = line.split('#')[0].strip()
        if line:
            names.add(re.match(r'[A-Za-z0-9_.-]+', line)[0].lower())
    return names


def declared():
    setup = configparser.ConfigParser()
    setup.read(REPO / 'setup.cfg')
    required = requirement_names(setup['options']['install_requires'])
    extras = {name: requirement_names(block) for name, block in setup['options.extras_require'].items()}
    return required, extras


def third_party_imports():
    """{distribution: {(file, module level?)}} for every import of a module outside the stdlib and this repo.

    Module level means executed when the file is imported: not inside a function, a class or a try block (an
    import guarded by try is an optional one by construction).
    """
    found = {}

    def visit(node, path, module_level):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try)):
                visit(child, path, False)
                continue
            if isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                modules = [child.module]
            else:
                modules = []
            for module in modules:
                top = module.split('.')[0]
                if top not in sys.stdlib_module_names and top not in PACKAGES:
                    found.setdefault(DISTRIBUTIONS.get(top, top).lower(), set()).add((path, module_level))
            visit(child, path, module_level)

    for package in PACKAGES:
        for path in sorted((REPO / package).rglob('*.py')):
            visit(ast.parse(path.read_text()), str(path.relative_to(REPO)), True)
    return found


def is_optional_module(path):
    # kernels/dispatch.py imports the Triton kernel modules only where triton is importable,
    # vmamba_mm/datasets/__init__.py the checked COCO dataset only where mmdet (the det extra) is, and
    # vmamba_mm/apis the inferencer of a library (det, seg extras) only when that inferencer is asked for.
    return re.fullmatch(r'kernels/triton_\w+\.py|vmamba_mm/datasets/coco\.py|vmamba_mm/apis/(detection|segmentation)\.py',
                        path) is not None


def test_install_requires_covers_every_module_level_import():
    required, _ = declared()
    imports = third_party_imports()
    assert {'torch', 'torchvision', 'mmengine', 'mmcv', 'numpy'} <= imports.keys()  # the walk sees them
    missing = {distribution: sorted(path for path, module_level in places if module_level)
               for distribution, places in imports.items()
               if distribution not in required
               and any(module_level and not is_optional_module(path) for path, module_level in places)}
    assert not missing, f'imported at module level but not in setup.cfg install_requires: {missing}'


def test_every_other_import_is_declared_as_an_extra():
    required, extras = declared()
    optional = set().union(*extras.values())
    undeclared = sorted(set(third_party_imports()) - required - optional)
    assert not undeclared, f'imported but declared nowhere in setup.cfg: {undeclared}'
    assert 'mmpretrain' in required and {'mmdet'} <= extras['det'] and {'mmsegmentation'} <= extras['seg']


def test_the_walk_fails_on_an_undeclared_import(tmp_path, monkeypatch):
    package = tmp_path / 'kernels'
    package.mkdir()
    (package / 'ops.py').write_text('import torch\nimport some_new_dependency.sub\n')
    (tmp_path / 'vmamba_mm').mkdir()
    monkeypatch.setitem(globals(), 'REPO', tmp_path)
    assert third_party_imports() == {'torch': {('kernels/ops.py', True)},
                                     'some_new_dependency': {('kernels/ops.py', True)}}


@pytest.mark.parametrize('part', sorted(path.name for path in (REPO / 'requirements').glob('*.txt')))
def test_requirements_txt_pulls_in_every_requirements_file(part):
    lines = (REPO / 'requirements.txt').read_text().splitlines()
    assert f'-r requirements/{part}' in lines
