"""tools/analysis_tools/browse_dataset.py: the training pipeline's output with its ground truth, for the three
tasks."""
import mmcv
import numpy as np
import pytest
from tool_runner import REPO, load_module, load_tool

browse = load_tool('analysis_tools/browse_dataset.py')
demo_models = load_module(REPO / 'tests' / 'apis' / 'demo_models.py')
CONFIGS = demo_models.CONFIGS
# The training pipelines' output: 32x32 digits (drawn enlarged to 224 for a legible label), shapes resized to
# 128x128 for detection, and for segmentation randomly rescaled, then cropped to at most 128x128.
SIDES = {'mmpretrain': 224, 'mmdet': 128}


@pytest.mark.parametrize('scope', tuple(CONFIGS))
def test_browse_draws_the_first_samples(scope, demo_project, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_project)
    browse.main([str(CONFIGS[scope]), '--output-dir', str(tmp_path / 'out'), '--max', '2'])
    pictures = sorted((tmp_path / 'out').iterdir())
    assert [path.name[:6] for path in pictures] == ['00000_', '00001_']
    drawn = [mmcv.imread(str(path)) for path in pictures]
    if scope == 'mmseg':
        assert all(max(picture.shape[:2]) <= 128 for picture in drawn)
    else:
        assert all(picture.shape[:2] == (SIDES[scope], ) * 2 for picture in drawn)
    if scope == 'mmdet':  # the ground-truth boxes and masks, in the classes' palette, cover part of the picture
        palette = np.array([(60, 20, 220), (255, 128, 0), (0, 200, 255)])  # BGR of the config's palette
        assert any((np.abs(picture[..., None, :].astype(int) - palette).sum(-1) < 30).any() for picture in drawn)


def test_browse_errors(demo_project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data here
    with pytest.raises(SystemExit) as exit_info:
        browse.main([str(CONFIGS['mmseg']), '--output-dir', str(tmp_path / 'out')])
    assert str(exit_info.value.code).startswith('DatasetNotFoundError')
    monkeypatch.chdir(demo_project)
    with pytest.raises(SystemExit) as exit_info:
        browse.main([str(CONFIGS['mmseg']), '--output-dir', str(tmp_path / 'out'), '--max', '0'])
    assert str(exit_info.value.code) == 'ValueError: --max must be at least 1, got 0'
    assert not (tmp_path / 'out').exists()
