"""tools/dataset_converters/make_shapes_demo.py: COCO and ADE20K layouts that agree with their images."""
import json

import numpy as np
import pytest
from PIL import Image

from tool_runner import load_tool

converter = load_tool('dataset_converters/make_shapes_demo.py')


def change_from_background(image, split, index):
    """Per pixel, how far the written image is from the scene's background texture alone."""
    background = converter.textured_background(converter.scene_rng(0, split, index), image.size[0])
    return np.abs(np.asarray(image, np.float64) - np.clip(background, 0, 255)).mean(-1)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes') / 'coco'
    converter.make_shapes_demo('coco', str(root), num_train=12, num_val=4)
    return root


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes') / 'ade'
    converter.make_shapes_demo('ade', str(root), num_train=12, num_val=4)
    return root


@pytest.mark.parametrize('split, count', [('train2017', 12), ('val2017', 4)])
def test_coco_annotations_describe_the_images(coco_root, split, count):
    from pycocotools.coco import COCO

    coco = COCO(str(coco_root / 'annotations' / f'instances_{split}.json'))
    assert [coco.cats[i]['name'] for i in sorted(coco.cats)] == ['circle', 'square', 'triangle']
    assert len(coco.imgs) == count == len(list((coco_root / split).glob('*.jpg')))
    assert len({ann['id'] for ann in coco.anns.values()}) == len(coco.anns) >= count
    for image_id, info in coco.imgs.items():
        image = Image.open(coco_root / split / info['file_name'])
        assert image.size == (info['width'], info['height']) == (128, 128)
        change = change_from_background(image, split, image_id - 1)
        union = np.zeros(change.shape, bool)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            mask = coco.annToMask(ann).astype(bool)
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            # Box, area and polygon describe the same pixels (up to rasterising a triangle's sharp tips).
            assert max(abs(xs.min() - x), abs(xs.max() + 1 - (x + w))) <= 2
            assert max(abs(ys.min() - y), abs(ys.max() + 1 - (y + h))) <= 2
            assert abs(mask.sum() - ann['area']) <= 0.15 * ann['area']
            assert not (union & mask).any()  # shapes never overlap
            union |= mask
        # The annotations mark what is drawn over the background (elsewhere only JPEG noise).
        assert change[union].mean() > 20 > 5 > change[~union].mean()


def test_ade_labels_describe_the_images(ade_root):
    for split, count in (('training', 12), ('validation', 4)):
        images = sorted((ade_root / 'images' / split).glob('*.jpg'))
        labels = sorted((ade_root / 'annotations' / split).glob('*.png'))
        assert [p.stem for p in images] == [p.stem for p in labels] and len(images) == count
        for image_path, label_path in zip(images, labels):
            label_image = Image.open(label_path)
            assert label_image.mode == 'L' and label_image.size == (128, 128)
            label = np.asarray(label_image)
            assert set(np.unique(label)) <= {0, 1, 2, 3, 4} and {0, 1} <= set(np.unique(label))
            change = change_from_background(Image.open(image_path), split, int(image_path.stem))
            assert change[label >= 2].mean() > 20 > 5 > change[label == 1].mean()
            # 0 only outlines the shapes: every unlabelled pixel lies within a few pixels of a shape
            # (a 2-pixel line; the joints at sharp tips reach a little further).
            reach = 4
            shape = np.pad(label >= 2, reach)
            near_shape = np.zeros_like(shape)
            for dy in range(-reach, reach + 1):
                for dx in range(-reach, reach + 1):
                    near_shape |= np.roll(np.roll(shape, dy, 0), dx, 1)
            assert near_shape[reach:-reach, reach:-reach][label == 0].all()


def test_splits_are_different_scenes_and_the_seed_fixes_them(tmp_path):
    converter.make_shapes_demo('ade', str(tmp_path / 'a'), num_train=3, num_val=3)
    converter.make_shapes_demo('ade', str(tmp_path / 'b'), num_train=3, num_val=3)
    converter.make_shapes_demo('ade', str(tmp_path / 'c'), num_train=3, num_val=3, seed=1)

    def read(root, split):
        return [p.read_bytes() for p in sorted((root / 'images' / split).glob('*.jpg'))]

    assert read(tmp_path / 'a', 'training') == read(tmp_path / 'b', 'training')
    assert not set(read(tmp_path / 'a', 'training')) & set(read(tmp_path / 'a', 'validation'))
    assert not set(read(tmp_path / 'a', 'training')) & set(read(tmp_path / 'c', 'training'))
    # Scene i does not depend on how many scenes are written.
    converter.make_shapes_demo('ade', str(tmp_path / 'd'), num_train=1, num_val=1)
    assert read(tmp_path / 'd', 'training') == read(tmp_path / 'a', 'training')[:1]


def test_rerun_is_a_no_op_and_another_dataset_is_untouched(tmp_path):
    out = tmp_path / 'shapes'
    converter.main(['coco', '--out', str(out), '--num-train', '2', '--num-val', '1'])
    before = {p: p.stat().st_mtime_ns for p in out.rglob('*')}
    converter.main(['coco', '--out', str(out), '--num-train', '2', '--num-val', '1'])
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == before
    assert json.loads((out / 'manifest.json').read_text())['layout'] == 'coco'

    with pytest.raises(SystemExit, match='exists and does not hold the ade shapes demo with these settings'):
        converter.main(['ade', '--out', str(out), '--num-train', '2', '--num-val', '1'])
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == before
    assert [p.name for p in tmp_path.iterdir()] == ['shapes']  # no staging folder left behind


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def fail(root, manifest):
        (tmp_path / 'marker').write_text(root)
        raise KeyboardInterrupt

    monkeypatch.setitem(converter.WRITERS, 'coco', fail)
    with pytest.raises(KeyboardInterrupt):
        converter.make_shapes_demo('coco', str(tmp_path / 'shapes'), num_train=1, num_val=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['marker']


@pytest.mark.parametrize('argv, message', [
    (['coco', '--size', '32'], 'at least 64'),
    (['ade', '--num-train', '0'], '--num-train must be at least 1'),
    (['voc'], 'invalid choice'),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        converter.parse_args(argv)
    assert message in capsys.readouterr().err
