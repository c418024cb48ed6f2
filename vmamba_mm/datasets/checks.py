"""Checks of a config's datasets before a run starts: is the data where the config says it is?"""
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
