"""tools/train.py --vis-backend tensorboard: the run's scalars land in TensorBoard event files."""
import pytest
from tool_runner import REPO, load_module, load_tool

from vmamba_mm import launch

train_tool = load_tool('train.py')
demo_models = load_module(REPO / 'tests' / 'apis' / 'demo_models.py')
DEMO = demo_models.CONFIGS['mmpretrain']


def test_tensorboard_event_files_hold_the_runs_scalars(demo_project, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(demo_project)
    work_dir = tmp_path / 'run'
    # One epoch of one iteration (ten images), validated at its end.
    train_tool.main([str(DEMO), '--work-dir', str(work_dir), '--vis-backend', 'tensorboard', '--cfg-options',
                     'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1'])
    (events, ) = work_dir.glob('*/vis_data/events.out.tfevents.*')
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert {'loss', 'lr', 'accuracy/top1'} <= set(accumulator.Tags()['scalars'])
    # The config's own backend keeps writing beside it.
    assert list(work_dir.glob('*/vis_data/scalars.json'))


def test_vis_backend_is_added_once_beside_the_configs(demo_project):
    cfg = launch.load_config(str(DEMO))
    launch.add_vis_backend(cfg, 'tensorboard')
    launch.add_vis_backend(cfg, 'tensorboard')
    assert [backend['type'] for backend in cfg.visualizer.vis_backends] == ['LocalVisBackend', 'TensorboardVisBackend']


def test_missing_backend_package_is_named(monkeypatch):
    monkeypatch.setitem(launch.VIS_BACKENDS, 'tensorboard', ('TensorboardVisBackend', 'not_installed_tensorboard'))
    cfg = launch.load_config(str(DEMO))
    with pytest.raises(ValueError, match='not_installed_tensorboard package, which is not installed: pip install'):
        launch.add_vis_backend(cfg, 'tensorboard')
