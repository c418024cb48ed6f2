"""Bad data gives a clear error naming what is wrong, before or during a run: missing dataset folders,
unreadable image files."""
import re

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import TRANSFORMS
from PIL import Image

from vmamba_mm.datasets import CheckedLoadImageFromFile, DatasetNotFoundError, UnreadableImageError, check_dataset_roots


def _digit_folder(root, classes=('0', '1'), per_class=3):
    """A folder-per-class dataset of tiny grayscale PNGs."""
    for label in classes:
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray(np.full((8, 8), 40 * index, np.uint8), mode='L').save(root / label / f'{index}.png')
    return root


# --- dataset folders ------------------------------------------------------------------------------

def _cfg(**dataloaders):
    return ConfigDict({f'{name}_dataloader': dict(dataset=dataset) for name, dataset in dataloaders.items()})


def test_missing_data_root_shows_the_expected_layout(tmp_path):
    cfg = _cfg(train=dict(type='CustomDataset', data_root=str(tmp_path / 'digits'), data_prefix='train'))
    with pytest.raises(DatasetNotFoundError) as error:
        check_dataset_roots(cfg)
    message = str(error.value)
    assert message.startswith(f'train_dataloader.dataset (CustomDataset): data_root {tmp_path / "digits"} does not '
                              f'exist. CustomDataset expects:\n{tmp_path / "digits"}/\n├── train/<class name>/')
    assert 'make_digits_demo.py --out' in message
    assert message.endswith('Point the config at the data, e.g. --cfg-options '
                            'train_dataloader.dataset.data_root=/path/to/data (or set data_root in the config).')
    assert isinstance(error.value, FileNotFoundError)  # what tools/train.py reports in one line


@pytest.mark.parametrize('dataset, missing', [
    (dict(type='CustomDataset', data_prefix='val'), 'image folder {root}/val does not exist'),
    (dict(type='CocoDataset', ann_file='annotations/instances_val2017.json', data_prefix=dict(img='val2017/')),
     'annotation file {root}/annotations/instances_val2017.json does not exist'),
    (dict(type='ADE20KDataset', data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation')),
     'image folder {root}/images/validation does not exist'),
])
def test_missing_folders_under_an_existing_root(tmp_path, dataset, missing):
    cfg = _cfg(val=dict(dataset, data_root=str(tmp_path)))
    with pytest.raises(DatasetNotFoundError, match=f"^val_dataloader.dataset \\({dataset['type']}\\): "
                                                    f'{re.escape(missing.format(root=tmp_path))}\\. '
                                                    f"{dataset['type']} expects:\n"):
        check_dataset_roots(cfg)


def test_wrapped_datasets_are_checked_and_named_by_their_config_key(tmp_path):
    _digit_folder(tmp_path / 'train')
    good = dict(type='CustomDataset', data_root=str(tmp_path), data_prefix='train')
    cfg = _cfg(train=dict(type='ConcatDataset', datasets=[
        dict(type='RepeatDataset', times=2, dataset=good),
        dict(type='MyDataset', data_root=str(tmp_path / 'extra')),
    ]))
    with pytest.raises(DatasetNotFoundError, match=re.escape(
            f'train_dataloader.dataset.datasets[1] (MyDataset): data_root {tmp_path / "extra"} does not exist. '
            'Point the config at the data')):
        check_dataset_roots(cfg)
    check_dataset_roots(_cfg(train=good, test=dict(type='CocoDataset', data_root='s3://bucket/coco')))


def test_only_the_named_dataloaders_are_checked(tmp_path):
    cfg = _cfg(test=dict(type='CustomDataset', data_root=str(tmp_path / 'nowhere')))
    check_dataset_roots(cfg, ('train_dataloader', 'val_dataloader'))
    with pytest.raises(DatasetNotFoundError, match='^test_dataloader.dataset'):
        check_dataset_roots(cfg, ('test_dataloader', ))


# --- image files --------------------------------------------------------------------------------

@pytest.fixture
def broken_images(tmp_path):
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(range(200)))
    return tmp_path


@pytest.mark.parametrize('name, reason', [
    ('missing.png', 'FileNotFoundError: '),
    ('empty.png', ''),
    ('corrupt.png', 'the decoder cannot read it (corrupt, or not an image)'),
])
def test_unreadable_image_is_named(broken_images, name, reason):
    path = broken_images / name
    loader = TRANSFORMS.build(dict(type='CheckedLoadImageFromFile'))
    with pytest.raises(UnreadableImageError) as error:
        loader(dict(img_path=str(path)))
    message = str(error.value)
    assert message.startswith(f'image {path} cannot be loaded: {reason}')
    assert message.endswith("skip such files with dict(type='CheckedLoadImageFromFile', on_error='skip') in the "
                            'training pipeline')


def test_skip_returns_none_and_reports_each_file_once(broken_images, mm_log):
    loader = CheckedLoadImageFromFile(on_error='skip')
    assert loader(dict(img_path=str(broken_images / 'corrupt.png'))) is None
    assert loader(dict(img_path=str(broken_images / 'corrupt.png'))) is None
    assert mm_log == [f'CheckedLoadImageFromFile: skipped image {broken_images / "corrupt.png"}: the decoder cannot '
                      'read it (corrupt, or not an image)']


def test_readable_images_load_as_with_mmcv(tmp_path):
    _digit_folder(tmp_path)
    results = CheckedLoadImageFromFile()(dict(img_path=str(tmp_path / '0' / '2.png')))
    assert results['img'].shape == (8, 8, 3) and results['img'][0, 0, 0] == 80
    assert results['ori_shape'] == (8, 8)


@pytest.mark.parametrize('kwargs, message', [
    (dict(on_error='ignore'), "on_error must be one of ('raise', 'skip'), got 'ignore'"),
    (dict(ignore_empty=True), "use on_error='skip' instead of ignore_empty"),
])
def test_bad_loader_options(kwargs, message):
    with pytest.raises(ValueError, match=f'^CheckedLoadImageFromFile: {re.escape(message)}$'):
        CheckedLoadImageFromFile(**kwargs)


def _dataset(root, on_error):
    from mmengine.registry import DefaultScope
    from mmpretrain.datasets import CustomDataset
    # Earlier tests in the session may have left another library's default scope current.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return CustomDataset(data_root=str(root), pipeline=[dict(type='CheckedLoadImageFromFile', on_error=on_error),
                                                            dict(type='PackInputs')])


def test_a_corrupt_file_in_a_dataset(tmp_path):
    _digit_folder(tmp_path)
    corrupt = tmp_path / '1' / '1.png'
    corrupt.write_bytes(b'not a png')
    failing = _dataset(tmp_path, 'raise')
    index = [failing.get_data_info(i)['img_path'] for i in range(len(failing))].index(str(corrupt))

    # In a DataLoader worker: the error type and message reach the training process.
    loader = torch.utils.data.DataLoader(failing, batch_size=1, num_workers=1,
                                         sampler=[index], collate_fn=lambda batch: batch)
    with pytest.raises(UnreadableImageError, match=re.escape(f'image {corrupt} cannot be loaded')):
        next(iter(loader))

    replacement = _dataset(tmp_path, 'skip')[index]
    assert replacement['data_samples'].img_path != str(corrupt)


@pytest.mark.slow
@pytest.mark.parametrize('on_error', ['raise', 'skip'])
def test_a_corrupt_image_in_a_training_run(tmp_path, digits_root, on_error):
    import shutil
    import textwrap

    from reliability_runner import REPO, run_train

    data = tmp_path / 'digits'
    for label in ('0', '1'):
        for split in ('train', 'val'):
            (data / split / label).mkdir(parents=True)
            for image in sorted((digits_root / split / label).glob('*.png'))[:16]:
                shutil.copy(image, data / split / label)
    corrupt = sorted((data / 'train' / '1').glob('*.png'))[3]
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # a truncated PNG
    config = tmp_path / 'corrupt.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = ['{REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'}']
        load = dict(type='CheckedLoadImageFromFile', on_error='{on_error}')
        train_dataloader = dict(batch_size=16, dataset=dict(data_root='{data}', pipeline=[load, dict(type='PackInputs')]))
        val_dataloader = dict(dataset=dict(data_root='{data}'))
        test_dataloader = val_dataloader
        model = dict(head=dict(num_classes=2))
        data_preprocessor = dict(num_classes=2)
        train_cfg = dict(max_epochs=1)
        '''))
    result = run_train(config, '--work-dir', tmp_path / 'run', cwd=tmp_path)
    output = result.stdout + result.stderr
    if on_error == 'raise':
        assert result.returncode != 0
        assert f'UnreadableImageError: image {corrupt} cannot be loaded' in result.stderr
    else:
        assert result.returncode == 0, result.stderr[-3000:]
        assert output.count(f'CheckedLoadImageFromFile: skipped image {corrupt}: ') == 1


@pytest.mark.slow
def test_train_py_reports_a_missing_dataset_in_one_line_and_writes_nothing(tmp_path):
    from reliability_runner import REPO, run_train

    result = run_train(REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py', '--work-dir', tmp_path / 'run',
                       '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path / "digits"}', cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f'DatasetNotFoundError: train_dataloader.dataset (CustomDataset): data_root {tmp_path / "digits"} does not '
        'exist. CustomDataset expects:\n'), result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    assert list(tmp_path.iterdir()) == []


# --- model configuration ------------------------------------------------------------------------

def test_an_arch_of_the_wrong_type_is_named():
    from vmamba_mm.models import VMamba

    with pytest.raises(TypeError, match=r'^VMamba arch must be a name or a dict, got int\.$'):
        VMamba(3)


# --- model input --------------------------------------------------------------------------------

@pytest.mark.parametrize('shape', [(0, 3, 32, 32), (1, 3, 0, 32), (2, 3, 32, 0)])
def test_an_empty_input_is_named(shape):
    from vmamba_mm.models import VMamba

    with pytest.raises(ValueError, match=f'^VMamba got an empty input of shape {re.escape(str(shape))}\\.$'):
        VMamba(dict(dims=8, depths=(1, 1), ssm_ratio=1.0, d_state=1), out_indices=(1, ))(torch.zeros(shape))


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_input_is_named(bad):
    from vmamba_mm.models import VMamba

    x = torch.zeros(2, 3, 16, 16)
    x[1, 2, 3, 4] = x[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match=r'^VMamba input holds 2 non-finite values \(NaN/inf\); check the data and its '
                                         r'normalisation \(a std of 0 divides by zero\)\.$'):
        VMamba(dict(dims=8, depths=(1, 1), ssm_ratio=1.0, d_state=1), out_indices=(1, )).eval()(x)


def test_a_training_step_reads_nothing_back_from_the_device():
    """No host read in a training forward and backward: on a GPU each one would stall the step until the work
    queued before it finished (non-finite inputs are named by NonFiniteLossHook instead)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from vmamba_mm.models import VMamba

    class HostReads(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.reads = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default):
                self.reads.append(func)
            return func(*args, **(kwargs or {}))

    model = VMamba(dict(dims=8, depths=(1, 1), ssm_ratio=1.0, d_state=1), out_indices=(0, 1), drop_path_rate=0.1)
    x = torch.randn(2, 3, 32, 32)
    with HostReads() as mode:
        sum(out.sum() for out in model.train()(x)).backward()
    assert mode.reads == []
    with HostReads() as mode, torch.no_grad():
        model.eval()(x)
    assert len(mode.reads) == 1  # the eval check of the input
