"""setup.cfg declares what the package imports, requirements.txt pulls in every requirements/ file, and `pip install .`
into a fresh environment gives working packages."""
import ast
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
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


# --- `pip install .` into a fresh virtual environment -----------------------------------------------------------

# Reused from this environment rather than installed from the index: torch and torchvision (pinned together, several
# GB with their CUDA libraries) and mmcv (built with its ops by tools/install.sh; PyPI has only its sdist).
REUSED = ('torch', 'torchvision', 'mmcv')
# Packaging tools belong to the new environment itself, as in any fresh one.
VENV_OWN = {'pip', 'setuptools', 'wheel'}
# Installed from the index by `pip install .[det,seg]`: what setup.cfg declares, directly or through them.
RESOLVED = ('mmengine', 'mmpretrain', 'mmdet', 'mmsegmentation', 'pycocotools', 'ftfy', 'regex')


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def reused_distributions():
    """torch's and torchvision's installed dependency closure (markers evaluated, extras followed) and mmcv alone,
    whose own dependencies (mmengine among them) the new environment resolves."""
    from importlib import metadata

    from packaging.requirements import Requirement

    installed = {canonical(dist.metadata['Name']): dist for dist in metadata.distributions()}
    closure, pending = {}, [('torch', frozenset()), ('torchvision', frozenset())]
    while pending:
        name, extras = pending.pop()
        name = canonical(name)
        # A requirement this environment lacks is left to pip in the new one.
        if name in VENV_OWN or name not in installed or (name in closure and extras <= closure[name]):
            continue
        closure[name] = closure.get(name, frozenset()) | extras
        for line in installed[name].requires or []:
            requirement = Requirement(line)
            environments = [{'extra': extra} for extra in closure[name] or {''}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return [installed[name] for name in sorted(closure | {'mmcv': frozenset()})]


def link_distributions(distributions, folder):
    """Symlinks to each distribution's top-level packages, modules and metadata in `folder` (one without a file
    list is left to pip in the new environment)."""
    folder.mkdir()
    for dist in distributions:
        for top in {path.parts[0] for path in dist.files or ()} - {'..', '__pycache__'}:
            source, link = Path(dist.locate_file(top)), folder / top
            if source.exists() and not top.endswith('.pth') and not link.exists():
                link.symlink_to(source)


def in_venv(python, *args, cwd, timeout=1800):
    """Runs `python args...` with nothing of this environment or checkout on its path."""
    env = {key: value for key, value in os.environ.items() if key not in ('PYTHONPATH', 'PYTHONHOME')}
    env.setdefault('OMP_NUM_THREADS', '1')
    return subprocess.run([str(python), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope='module')
def pip_installed(tmp_path_factory):
    """(python, site-packages, folder) of a fresh venv in `folder` where `pip install .[det,seg]` ran on a copy of
    this checkout, with only REUSED (and what torch needs) taken over from this environment."""
    root = tmp_path_factory.mktemp('pip_install')
    # The files a clone has (plus new ones not yet committed), so that the build leaves nothing in the checkout.
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split('\0')
    source = root / 'vmamba_mm-clone'
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)

    link_distributions(reused_distributions(), root / 'reused')
    venv = root / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, capture_output=True)
    python = venv / 'bin' / 'python'
    site_packages = Path(in_venv(python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))',
                                 cwd=root).stdout.strip())
    (site_packages / 'reused.pth').write_text(f'{root / "reused"}\n')

    install = in_venv(python, '-m', 'pip', 'install', '--disable-pip-version-check', '--no-compile',
                      f'{source}[det,seg]', cwd=root)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return python, site_packages, root


@pytest.mark.slow
def test_pip_install_resolves_the_declared_dependencies(pip_installed):
    python, site_packages, root = pip_installed
    check = in_venv(python, '-m', 'pip', 'check', cwd=root)
    assert check.returncode == 0, check.stdout
    report = in_venv(python, '-c', textwrap.dedent('''
        import json, sys
        from importlib import metadata
        print(json.dumps({name: str(metadata.distribution(name).locate_file('')) for name in sys.argv[1:]}))
        '''), *RESOLVED, *REUSED, 'vmamba_mm', cwd=root)
    assert report.returncode == 0, report.stderr[-3000:]
    locations = json.loads(report.stdout)
    # The OpenMMLab stack came from the index into the venv; torch and mmcv stayed where they were.
    assert all(Path(locations[name]) == site_packages for name in RESOLVED + ('vmamba_mm', )), locations
    assert all(Path(locations[name]) == root / 'reused' for name in REUSED), locations


@pytest.mark.slow
def test_pip_install_installs_the_two_packages_only(pip_installed):
    python, site_packages, root = pip_installed
    (metadata_dir, ) = site_packages.glob('vmamba_mm-*.dist-info')
    top_level = {line.split(',')[0].split('/')[0] for line in (metadata_dir / 'RECORD').read_text().splitlines()}
    assert top_level == {'vmamba_mm', 'kernels', metadata_dir.name}


# In the venv, from a folder outside the checkout: kernels alone, then the demo configs of the clone, whose
# custom_imports pull in the installed vmamba_mm; each model is built through its library's registry and its
# backbone runs forward and backward.
INSTALLED_SMOKE = textwrap.dedent('''
    import json, sys

    import torch
    import kernels
    assert 'vmamba_mm' not in sys.modules, 'kernels imported vmamba_mm'
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    report = {'kernels': kernels.__file__, 'backends': kernels.available_backends()}
    for path in sys.argv[1:]:
        cfg = Config.fromfile(path)
        init_default_scope(cfg.default_scope)
        model = MODELS.build(cfg.model)
        features = model.backbone(torch.randn(1, 3, 64, 64))
        sum(feature.sum() for feature in features).backward()
        report[path] = [type(model).__name__, len(features), next(model.backbone.parameters()).grad is not None]
    import vmamba_mm
    report['vmamba_mm'] = vmamba_mm.__file__
    print(json.dumps(report))
    ''')


@pytest.mark.slow
def test_installed_package_runs_the_demo_configs_of_a_clone(pip_installed):
    python, site_packages, root = pip_installed
    demos = {REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py': ['ImageClassifier', 1],
             REPO / 'configs' / 'detection' / 'mask-rcnn_vmamba-demo_shapes.py': ['MaskRCNN', 4],
             REPO / 'configs' / 'segmentation' / 'upernet_vmamba-demo_shapes.py': ['EncoderDecoder', 4]}
    smoke = in_venv(python, '-c', INSTALLED_SMOKE, *demos, cwd=root)
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    report = json.loads(smoke.stdout.splitlines()[-1])
    assert Path(report['vmamba_mm']) == site_packages / 'vmamba_mm' / '__init__.py'
    assert Path(report['kernels']) == site_packages / 'kernels' / '__init__.py'
    assert 'torch' in report['backends']
    for path, (model_type, num_features) in demos.items():
        assert report[str(path)] == [model_type, num_features, True], path
