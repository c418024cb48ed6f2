"""tools/test.py --show-dir: the task's visualization hook draws the prediction of every test image, for the three
tasks; without the option nothing is drawn."""
import mmcv
import pytest
from tool_runner import REPO, load_module, load_tool

test_tool = load_tool('test.py')
demo_models = load_module(REPO / 'tests' / 'apis' / 'demo_models.py')
CONFIGS = demo_models.CONFIGS
TESTED_IMAGES = 2


def _pictures(scope, show_dir):
    """The pictures where each task's hook writes them (tools/test.py --help)."""
    if scope == 'mmseg':
        return sorted((show_dir / 'vis_data' / 'vis_image').glob('*.png'))
    return sorted(path for path in show_dir.iterdir() if path.suffix in ('.png', '.jpg'))


@pytest.mark.parametrize('scope', tuple(CONFIGS))
def test_show_dir_draws_every_test_prediction(scope, demo_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(demo_project)
    checkpoint = demo_models.random_checkpoint(demo_project, scope)
    show_dir = tmp_path / 'show'
    test_tool.main([str(CONFIGS[scope]), str(checkpoint), '--work-dir', str(tmp_path / 'run'), '--show-dir',
                    str(show_dir), '--cfg-options', f'test_dataloader.dataset.indices={TESTED_IMAGES}'])
    assert capsys.readouterr().out  # the metrics were reported: the test ran to its end
    pictures = _pictures(scope, show_dir)
    assert len(pictures) == TESTED_IMAGES
    # Classification writes the truth and the prediction on the image as the model saw it (32x32 digits); the others
    # draw them side by side on the image as read (128x128).
    shape = (32, 32, 3) if scope == 'mmpretrain' else (128, 256, 3)
    assert all(mmcv.imread(str(picture)).shape == shape for picture in pictures)


@pytest.mark.parametrize('scope', tuple(CONFIGS))
def test_visualization_hooks_draw_only_when_asked(scope, demo_project, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_project)
    checkpoint = demo_models.random_checkpoint(demo_project, scope)
    args = [str(CONFIGS[scope]), str(checkpoint), '--work-dir', str(tmp_path / 'run')]
    plain = test_tool.build_config(test_tool.parse_args(args)).default_hooks.visualization
    assert not plain.get('enable', False) and not plain.get('draw', False)
    shown = test_tool.build_config(test_tool.parse_args([*args, '--show-dir', 'pictures']))
    hook = shown.default_hooks.visualization
    assert hook.get('enable', False) or hook.get('draw', False)
    assert hook['interval'] == 1
    # Relative to where the command runs, whatever the hook would join it to.
    target = {'mmpretrain': hook.get('out_dir'), 'mmdet': hook.get('test_out_dir'), 'mmseg': shown.visualizer.get('save_dir')}
    assert target[scope] == str(demo_project / 'pictures')
