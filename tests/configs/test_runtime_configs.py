"""Every training config runs on one runtime: atomic checkpoints, the non-finite-loss stop, a resumable
train loop and the fast optimizer step, whatever the task; plus what each task's library gives its tools."""
import pytest
from mmengine.config import Config

from shapes_demo_data import REPO

CONFIGS = sorted(path.relative_to(REPO / 'configs') for path in (REPO / 'configs').glob('*/*.py')
                 if path.parent.name != '_base_')
SCOPES = {'classification': 'mmpretrain', 'detection': 'mmdet', 'segmentation': 'mmseg'}
VISUALIZERS = {'mmpretrain': ('VisualizationHook', 'UniversalVisualizer'),
               'mmdet': ('DetVisualizationHook', 'DetLocalVisualizer'),
               'mmseg': ('SegVisualizationHook', 'SegLocalVisualizer')}


def test_every_task_is_covered():
    assert {path.parts[0] for path in CONFIGS} == set(SCOPES)


@pytest.mark.parametrize('config', CONFIGS, ids=str)
def test_config_runs_on_the_shared_runtime(config):
    cfg = Config.fromfile(REPO / 'configs' / config)
    scope = SCOPES[config.parts[0]]
    assert cfg.default_scope == scope
    # Any tool that reads the config (upstream mm* tools too) imports vmamba_mm and builds its strict runner.
    assert cfg.custom_imports == dict(imports=['vmamba_mm'], allow_failed_imports=False)
    assert cfg.runner_type == 'StrictRunner'
    # cuDNN autotuning where every training batch has one shape (classification's and segmentation's fixed crops,
    # as mmseg has it); detection's images vary in size. Compiled by default on GPUs only where shapes are fixed.
    assert cfg.env_cfg.cudnn_benchmark == (scope in ('mmpretrain', 'mmseg'))
    assert cfg.get('compile') == ('auto' if scope == 'mmpretrain' else None)
    hooks = cfg.default_hooks
    assert hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert hooks.non_finite_loss == dict(type='NonFiniteLossHook')
    assert (hooks.visualization.type, cfg.visualizer.type) == VISUALIZERS[scope]
    by_epoch = cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop'
    assert by_epoch or cfg.train_cfg.type == 'ResumableIterBasedTrainLoop'
    # Iteration-based runs count checkpoints and logged metrics in iterations.
    assert hooks.checkpoint.get('by_epoch', True) == by_epoch
    assert cfg.log_processor.by_epoch == by_epoch
    assert hooks.logger.get('log_metric_by_epoch', True) == by_epoch
    # One parameter group per distinct setting and torch's one-kernel AdamW (docs/performance.md).
    assert cfg.optim_wrapper.constructor == 'MergedGroupsOptimWrapperConstructor'
    assert (cfg.optim_wrapper.optimizer.type, cfg.optim_wrapper.optimizer.fused) == ('AdamW', True)
