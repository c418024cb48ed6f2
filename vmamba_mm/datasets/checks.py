"""Checks of a config's data settings before a run starts: is the data where the config says it is, does
evaluation see every image, does a training batch hold enough samples for the model's BatchNorms?"""
import os.path as osp

# What the datasets of vmamba_mm's configs expect under data_root.
LAYOUTS = {
    'CustomDataset': '''\
{root}/
├── train/<class name>/<image>.png|jpg ...   (one folder per class)
└── val/<class name>/<image> ...
(the digits demo writes it: python tools/dataset_converters/make_digits_demo.py --out {root})''',
    'ImageNet': '''\
{root}/
├── train/n01440764/*.JPEG ...   (one folder per class)
├── val/*.JPEG                   (or one folder per class)
└── meta/train.txt, meta/val.txt (\'<relative path> <label>\' lines)''',
    'CocoDataset': '''\
{root}/
├── annotations/instances_train2017.json, instances_val2017.json
├── train2017/*.jpg
└── val2017/*.jpg
(a small one in this layout: python tools/dataset_converters/make_shapes_demo.py)''',
    'ADE20KDataset': '''\
{root}/
├── images/training/*.jpg, images/validation/*.jpg
└── annotations/training/*.png, annotations/validation/*.png
(a small one in this layout: python tools/dataset_converters/make_shapes_demo.py)''',
}
LAYOUTS['BaseSegDataset'] = LAYOUTS['ADE20KDataset']
WRAPPERS = ('RepeatDataset', 'ClassBalancedDataset', 'ConcatDataset', 'MultiImageMixDataset', 'KFoldDataset')


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's root folder, annotation file or image folder named by the config does not exist."""


class BadAnnotationError(ValueError):
    """An annotation (or image entry) of a COCO-style file cannot be used: NaN/inf or out-of-image
    coordinates, a polygon of fewer than 3 points, an empty segmentation where masks are trained, a box
    without positive size, an unknown category."""


class DataConfigError(ValueError):
    """A config's data settings would give a wrong result or a failing run: images skipped in evaluation,
    training batches too small for the model's BatchNorms."""


def check_dataset_roots(cfg, dataloaders=('train_dataloader', 'val_dataloader', 'test_dataloader')):
    """Raise :class:`DatasetNotFoundError` for the first dataset of `dataloaders` in `cfg` whose
    `data_root`, `ann_file` or `data_prefix` folders are missing, showing the layout it expects.

    Only local paths are checked (URIs like ``s3://`` are left to their file backend)."""
    for name in dataloaders:
        loader = cfg.get(name)
        if not loader or 'dataset' not in loader:
            continue
        for key, dataset in _leaf_datasets(loader['dataset'], f'{name}.dataset'):
            _check(dataset, key)


def _leaf_datasets(dataset, key):
    """(config key, dataset config) of the datasets that read files, through dataset wrappers."""
    if dataset.get('type') in WRAPPERS or ('dataset' in dataset or 'datasets' in dataset):
        if 'datasets' in dataset:
            for index, inner in enumerate(dataset['datasets']):
                yield from _leaf_datasets(inner, f'{key}.datasets[{index}]')
        else:
            yield from _leaf_datasets(dataset['dataset'], f'{key}.dataset')
    else:
        yield key, dataset


def _is_remote(path):
    return '://' in str(path)


def _check(dataset, key):
    root = dataset.get('data_root') or ''
    kind = dataset.get('type', 'dataset')
    kind = kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
    if _is_remote(root):
        return
    missing = None
    if root and not osp.isdir(root):
        missing = f'data_root {root} does not exist'
    else:
        ann_file = dataset.get('ann_file') or ''
        if ann_file and not _is_remote(ann_file) and not osp.isfile(osp.join(root, ann_file)):
            missing = f'annotation file {osp.join(root, ann_file)} does not exist'
        prefix = dataset.get('data_prefix') or {}
        folders = prefix.values() if isinstance(prefix, dict) else [prefix]
        for folder in folders:
            if missing is None and folder and not _is_remote(folder) and not osp.isdir(osp.join(root, folder)):
                missing = f'image folder {osp.join(root, folder)} does not exist'
    if missing is None:
        return
    layout = LAYOUTS.get(kind)
    expected = f' {kind} expects:\n{layout.format(root=root or "<data_root>")}\n' if layout else ' '
    raise DatasetNotFoundError(
        f'{key} ({kind}): {missing}.{expected}Point the config at the data, e.g. --cfg-options '
        f'{key}.data_root=/path/to/data (or set data_root in the config).')


def check_data_pipelines(cfg, dataloaders=('val_dataloader', 'test_dataloader')):
    """Raise :class:`DataConfigError` when a pipeline of `dataloaders` (or ``cfg.tta_pipeline``, which
    `tools/test.py --tta` puts in place of the test pipeline) skips unreadable images
    (``CheckedLoadImageFromFile`` with ``on_error='skip'``): evaluation would score other images in their
    place, and a metric over a different set than the config names misleads."""
    pipelines = [(f'{key}.pipeline', dataset.get('pipeline') or [])
                 for name in dataloaders if (cfg.get(name) or {}).get('dataset')
                 for key, dataset in _leaf_datasets(cfg[name]['dataset'], f'{name}.dataset')]
    if cfg.get('tta_pipeline'):
        pipelines.append(('tta_pipeline', cfg['tta_pipeline']))
    for key, pipeline in pipelines:
        for step in _steps(pipeline):
            if step.get('type') == 'CheckedLoadImageFromFile' and step.get('on_error') == 'skip':
                raise DataConfigError(
                    f"{key} loads images with on_error='skip': evaluation would score other images in place of "
                    "the unreadable ones. Skip only in the training pipeline; here use on_error='raise' (the "
                    'default) and fix or remove the files it names.')


def _steps(pipeline):
    """The transform configs of `pipeline`, through the nested lists of wrappers (TestTimeAug, RandomChoice)."""
    for step in pipeline:
        if isinstance(step, (list, tuple)):
            yield from _steps(step)
        elif isinstance(step, dict):
            yield step
            for value in step.values():
                if isinstance(value, (list, tuple)):
                    yield from _steps(value)


def check_batch_norm_batch_size(cfg, world_size=1):
    """Raise :class:`DataConfigError` when a training batch gives a BatchNorm one value per channel.

    A decode head that pools its input to 1x1 (a ``pool_scales`` with 1, as in UperNet and PSPNet, or an
    ASPP head's image pooling) normalises that branch over the batch alone; BatchNorm cannot train on a
    single value per channel and stops with "Expected more than 1 value per channel when training". So
    ``train_dataloader.batch_size`` must be at least 2 per process, or the head's norm a SyncBN over
    `world_size` >= 2 processes (mmengine turns SyncBN into BN when not distributed), or a norm that does
    not use the batch (GN). Configs without a training loop are not checked: evaluation uses the running
    statistics."""
    if cfg.get('train_cfg') is None or not cfg.get('train_dataloader'):
        return
    batch_size = cfg['train_dataloader'].get('batch_size', 1)
    for key, head in _pooling_heads(cfg.get('model') or {}, 'model'):
        norm = (head.get('norm_cfg') or {}).get('type')
        norm = norm if isinstance(norm, str) else getattr(norm, '__name__', str(norm))
        if 'BN' not in norm and 'BatchNorm' not in norm:
            continue
        synced = world_size if 'Sync' in norm else 1
        if batch_size * synced >= 2:
            continue
        processes = f' over {world_size} processes' if 'Sync' in norm else ''
        raise DataConfigError(
            f'train_dataloader.batch_size is {batch_size}{processes}, so the {norm} after the 1x1 pooling of '
            f'{key} ({head.get("type")}) normalises one value per channel, which training cannot do ("Expected '
            'more than 1 value per channel when training"). Train with train_dataloader.batch_size >= 2 per GPU, '
            f"or SyncBN over 2 or more GPUs ({key}.norm_cfg=dict(type='SyncBN', requires_grad=True)), or a norm "
            f"that does not use the batch ({key}.norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)).")


def _pooling_heads(cfg, key):
    """(config key, config) of the model's parts that pool features to 1x1 before a normalised conv."""
    if isinstance(cfg, dict):
        if 1 in (cfg.get('pool_scales') or ()) or 'ASPP' in str(cfg.get('type', '')):
            yield key, cfg
        for name, value in cfg.items():
            yield from _pooling_heads(value, f'{key}.{name}')
    elif isinstance(cfg, (list, tuple)):
        for index, value in enumerate(cfg):
            yield from _pooling_heads(value, f'{key}[{index}]')
