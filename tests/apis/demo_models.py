"""The demo configs' models and data as the inference and drawing tests need them, made once per test session.

`demo_project(tmp_path_factory)` is a project folder the demo configs run from: data/digits holds one 32x32
image per class and split in the digits demo's layout, data/shapes_coco and data/shapes_ade the shapes demo
with two training and two validation images. `random_checkpoint(project, scope)` is the demo model of a task
at its random initialisation, saved by vmamba_mm's runner, so it holds what a tools/train.py checkpoint
holds (weights, meta with the dataset's classes, message hub). Both live in the session's base temporary
folder, so test folders that use them (tests/apis, tests/tools) share one copy."""
import contextlib
import importlib.util
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {
    'mmpretrain': REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py',
    'mmdet': REPO / 'configs' / 'detection' / 'mask-rcnn_vmamba-demo_shapes.py',
    'mmseg': REPO / 'configs' / 'segmentation' / 'upernet_vmamba-demo_shapes.py',
}
DIGIT_CLASSES = [str(digit) for digit in range(10)]


def _write_digits(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for name in DIGIT_CLASSES:
            (root / split / name).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).convert('RGB').save(
                root / split / name / f'{split}_{name}.png')


def load_module(path):
    """Import a file that is not on sys.path (a tool script, another test folder's helper)."""
    spec = importlib.util.spec_from_file_location(f'vmamba_mm_test_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_shapes(data):
    converter = load_module(REPO / 'tools' / 'dataset_converters' / 'make_shapes_demo.py')
    for layout in ('coco', 'ade'):
        converter.make_shapes_demo(layout, str(data / f'shapes_{layout}'), num_train=2, num_val=2)


def demo_project(tmp_path_factory):
    """The session's project folder with the demo data (written by the first caller)."""
    project = tmp_path_factory.getbasetemp() / 'vmamba_mm_demo_project'
    if not (project / 'data').is_dir():
        staging = tmp_path_factory.mktemp('demo_data')
        _write_digits(staging / 'digits')
        _write_shapes(staging)
        project.mkdir()
        staging.rename(project / 'data')
    return project


def random_checkpoint(project, scope):
    """The path of the demo model of `scope` saved at its random initialisation (saved by the first caller)."""
    path = project / 'checkpoints' / f'{scope}.pth'
    if path.is_file():
        return path
    import torch

    from vmamba_mm import launch

    cfg = launch.load_config(str(CONFIGS[scope]))
    launch.register_scope(cfg)
    # The EMA hook keeps its averaged copy only once training starts: before that it has nothing to save.
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', []) if hook['type'] != 'EMAHook']
    cfg.work_dir = str(project / 'work_dirs' / scope)
    torch.manual_seed(0)
    with contextlib.chdir(project):  # the configs' data roots are relative
        runner = launch.build_runner(cfg)
        runner.save_checkpoint(str(path.parent), path.name, save_optimizer=False, save_param_scheduler=False)
    return path


def val_image(project, scope):
    """A validation image of the demo data of `scope`."""
    folder = {'mmpretrain': 'digits/val/3', 'mmdet': 'shapes_coco/val2017', 'mmseg': 'shapes_ade/images/validation'}
    return sorted((project / 'data' / folder[scope]).iterdir())[0]
