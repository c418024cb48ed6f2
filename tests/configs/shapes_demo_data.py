"""Helpers of the detection and segmentation config tests: the shapes demo data and test-only modules."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_module(path):
    """Import a file that is not on sys.path (a tool script, another test folder's helper)."""
    spec = importlib.util.spec_from_file_location(f'vmamba_mm_test_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_shapes_demo(layout, root, num_train=2, num_val=1):
    """Write the shapes demo in the `layout` ('coco' or 'ade') to `root`; returns `root`."""
    converter = load_module(REPO / 'tools' / 'dataset_converters' / 'make_shapes_demo.py')
    converter.make_shapes_demo(layout, str(root), num_train=num_train, num_val=num_val)
    return root
