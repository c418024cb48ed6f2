"""demo/image_demo.py: the picture of a prediction for a file or a folder, and clear errors for bad arguments."""
import re

import mmcv
import pytest
from tool_runner import REPO, load_module

image_demo = load_module(REPO / 'demo' / 'image_demo.py')
demo_models = load_module(REPO / 'tests' / 'apis' / 'demo_models.py')
CONFIGS = demo_models.CONFIGS


def _exit_message(argv):
    with pytest.raises(SystemExit) as exit_info:
        image_demo.main(argv)
    return str(exit_info.value.code)


def test_demo_writes_the_picture_of_one_image(demo_project, tmp_path, capsys):
    image = demo_models.val_image(demo_project, 'mmpretrain')
    checkpoint = demo_models.random_checkpoint(demo_project, 'mmpretrain')
    out = tmp_path / 'digit.png'
    image_demo.main([str(image), str(CONFIGS['mmpretrain']), str(checkpoint), '--out-file', str(out), '--device', 'cpu'])
    assert mmcv.imread(str(out)).shape == (224, 224, 3)
    printed = capsys.readouterr().out
    assert re.search(rf'{re.escape(str(image))}: \d \(score [\d.]+\) -> {re.escape(str(out))}$', printed, re.M)


def test_demo_draws_each_image_of_a_folder(demo_project, tmp_path, capsys):
    folder = demo_project / 'data' / 'shapes_ade' / 'images' / 'validation'
    checkpoint = demo_models.random_checkpoint(demo_project, 'mmseg')
    image_demo.main([str(folder), str(CONFIGS['mmseg']), str(checkpoint), '--out-dir', str(tmp_path / 'out')])
    names = sorted(path.stem for path in folder.iterdir())
    assert sorted(path.stem for path in (tmp_path / 'out').iterdir()) == names
    assert all(mmcv.imread(str(tmp_path / 'out' / f'{name}.png')).shape == (128, 128, 3) for name in names)
    assert capsys.readouterr().out.count(': pixels: ') == len(names)


def test_bad_arguments_are_named_and_nothing_is_written(demo_project, tmp_path):
    config, checkpoint = str(CONFIGS['mmdet']), str(tmp_path / 'unused.pth')
    folder = demo_project / 'data' / 'shapes_coco' / 'val2017'
    image = demo_models.val_image(demo_project, 'mmdet')
    assert _exit_message([str(tmp_path / 'nope.jpg'), config, checkpoint, '--out-file', 'o.png']) == (
        f'FileNotFoundError: image {tmp_path / "nope.jpg"} does not exist')
    assert _exit_message([str(folder), config, checkpoint, '--out-file', 'o.png']).startswith(
        f'ValueError: {folder} is a folder: pass --out-dir DIR')
    assert _exit_message([str(image), config, checkpoint]).startswith('ValueError: pass --out-file FILE')
    assert _exit_message([str(image), config, checkpoint, '--out-file', 'o.txt']).startswith(
        'ValueError: --out-file o.txt: name the picture with an image suffix')
    assert _exit_message([str(image), config, checkpoint, '--out-file', str(tmp_path / 'o.png')]) == (
        f'FileNotFoundError: checkpoint {checkpoint} does not exist')
    assert list(tmp_path.iterdir()) == []
