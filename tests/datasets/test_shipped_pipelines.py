"""Every shipped config checks its data at the door: checked image loading in every pipeline, label checks
that match the model's classes, checked COCO annotations, evaluation sets that never substitute an image,
and training batches its BatchNorms can normalise."""
from pathlib import Path

import pytest
from mmengine.config import Config

from vmamba_mm.datasets import check_batch_norm_batch_size, check_data_pipelines
from vmamba_mm.datasets.checks import _leaf_datasets, _steps

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
SHIPPED = sorted(path.relative_to(CONFIGS).as_posix() for task in ('classification', 'detection', 'segmentation')
                 for path in (CONFIGS / task).glob('*.py'))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _pipelines(cfg):
    """(key, dataset config, pipeline) of every dataset the config reads, and its TTA pipeline."""
    for name in LOADERS:
        if cfg.get(name):
            for key, dataset in _leaf_datasets(cfg[name]['dataset'], f'{name}.dataset'):
                yield key, dataset, dataset.get('pipeline', [])
    if cfg.get('tta_pipeline'):
        yield 'tta_pipeline', None, cfg.tta_pipeline


@pytest.mark.parametrize('name', SHIPPED)
def test_every_pipeline_loads_and_labels_through_the_checks(name):
    cfg = Config.fromfile(CONFIGS / name)
    task = name.split('/')[0]
    checked = 0
    for key, dataset, pipeline in _pipelines(cfg):
        if dataset is not None and dataset.get('type') == 'SyntheticImageNet':  # in memory: no files, labels drawn
            continue
        steps = {step['type']: step for step in _steps(pipeline)}
        assert 'LoadImageFromFile' not in steps and 'CheckedLoadImageFromFile' in steps, key
        assert steps['CheckedLoadImageFromFile'].get('on_error', 'raise') == 'raise', key
        if task == 'classification':
            assert steps['CheckClassLabels']['num_classes'] == cfg.model.head.num_classes, key
        elif task == 'segmentation':
            assert steps['CheckSegLabels']['num_classes'] in (cfg.model.decode_head.num_classes, 150), key
            if key != 'tta_pipeline':
                assert steps['CheckSegLabels']['num_classes'] == cfg.model.decode_head.num_classes, key
        else:
            assert dataset is None or dataset['type'] == 'CheckedCocoDataset', key
        if key.startswith(('val_', 'test_')):
            assert dataset.get('test_mode'), f'{key} may substitute images'
        checked += 1
    assert checked or name.endswith('_synthetic-in1k.py')  # the throughput config reads no files
    check_data_pipelines(cfg)
    # The recipes are for 8 GPUs; the demos run in one process.
    check_batch_norm_batch_size(cfg, world_size=1 if 'demo' in name else 8)
