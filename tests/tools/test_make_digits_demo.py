"""tools/dataset_converters/make_digits_demo.py: a deterministic, stratified, atomic ImageNet-style export."""
import json

import numpy as np
import pytest
from PIL import Image

from tool_runner import load_tool

converter = load_tool('dataset_converters/make_digits_demo.py')


def _files(root):
    return sorted(path.relative_to(root).as_posix() for path in root.rglob('*.png'))


def test_layout_counts_and_split(digits_project):
    root = digits_project / 'data' / 'digits'
    manifest = json.loads((root / 'manifest.json').read_text())
    train, val = _files(root / 'train'), _files(root / 'val')
    assert (len(train), len(val)) == (manifest['num_train'], manifest['num_val'])
    assert len(train) + len(val) == 1797
    assert sorted(p.name for p in (root / 'train').iterdir()) == [str(c) for c in range(10)]
    # Stratified: every class holds out its 20 % (rounded), and no scan is in both splits.
    for label in range(10):
        held_out = len(list((root / 'val' / str(label)).iterdir()))
        total = held_out + len(list((root / 'train' / str(label)).iterdir()))
        assert held_out == round(total * 0.2)
    assert not {p.split('/')[1] for p in train} & {p.split('/')[1] for p in val}


def test_images_are_the_upsampled_scans(digits_project):
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = next((digits_project / 'data' / 'digits' / 'val').rglob('*.png'))
    index = int(path.stem)
    image = Image.open(path)
    assert image.size == (32, 32) and image.mode == 'L'
    assert int(path.parent.name) == digits.target[index]
    # Shrinking back to 8x8 recovers the scan up to interpolation error (ink levels 0..16 -> 0..255).
    shrunk = np.asarray(image.resize((8, 8), Image.BOX), dtype=np.float64) * 16 / 255
    assert np.abs(shrunk - digits.images[index]).mean() < 1.5


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    labels = np.repeat(np.arange(3), 10)
    first = converter.split_indices(labels, 0.2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, converter.split_indices(labels, 0.2, seed=0)))
    assert not np.array_equal(first[1], converter.split_indices(labels, 0.2, seed=1)[1])


def test_rerun_is_a_no_op_and_foreign_folder_is_untouched(tmp_path, capsys):
    out = tmp_path / 'digits'
    converter.main(['--out', str(out), '--size', '8'])
    before = {p: p.stat().st_mtime_ns for p in out.rglob('*')}
    converter.main(['--out', str(out), '--size', '8'])
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == before

    with pytest.raises(SystemExit, match='exists and does not hold the digits demo with these settings'):
        converter.main(['--out', str(out), '--size', '16'])
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.digits-')]  # no staging left behind


@pytest.mark.parametrize('argv, message', [(['--size', '4'], 'at least'), (['--val-fraction', '1.5'], 'between')])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        converter.parse_args(argv)
    assert message in capsys.readouterr().err
