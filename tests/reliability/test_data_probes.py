"""Data checked at the door: each bad input of the table gets its exact error type and a message naming the
file, image, annotation or config key to fix; the good inputs beside them get the right result.

Tables: COCO annotations (CheckedCocoDataset, at build time), images (CheckedLoadImageFromFile), labels
(CheckSegLabels, CheckClassLabels), data settings (check_data_pipelines, check_batch_norm_batch_size),
and inference of a model cast to half precision.
"""
import json
import re

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from PIL import Image

import vmamba_mm  # noqa: F401  registers the checked dataset and transforms
from vmamba_mm.datasets import (BadAnnotationError, CheckClassLabels, CheckedCocoDataset, CheckedLoadImageFromFile,
                                CheckSegLabels, DataConfigError, LabelOutOfRangeError, UnreadableImageError,
                                check_batch_norm_batch_size, check_data_pipelines)

WIDTH, HEIGHT = 64, 48
TRIANGLE = [10.0, 10.0, 30.0, 10.0, 20.0, 30.0]
GOOD = dict(id=7, image_id=1, category_id=2, bbox=[10.0, 10.0, 20.0, 20.0], area=200.0, iscrowd=0,
            segmentation=[TRIANGLE])
NAN, INF = float('nan'), float('inf')
WITH_MASKS = [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
BOXES_ONLY = [dict(type='LoadAnnotations', with_bbox=True)]


def _coco(root, annotations, image=None):
    """A COCO file of one 64x48 image (id 1, a.jpg; written to root/img) and categories 1 and 2."""
    image = dict(dict(id=1, file_name='a.jpg', width=WIDTH, height=HEIGHT), **(image or {}))
    (root / 'img').mkdir(exist_ok=True)
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 90, np.uint8)).save(root / 'img' / 'a.jpg')
    # json writes NaN and Infinity as JavaScript does, and pycocotools (json.load) reads them back.
    (root / 'ann.json').write_text(json.dumps(dict(
        images=[image], annotations=annotations,
        categories=[dict(id=1, name='circle'), dict(id=2, name='square')])))
    return root


def _dataset(root, pipeline=WITH_MASKS, **kwargs):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return CheckedCocoDataset(data_root=str(root), ann_file='ann.json', data_prefix=dict(img='img/'),
                                  metainfo=dict(classes=('circle', 'square')), pipeline=pipeline, **kwargs)


def _ann(**changes):
    return dict(GOOD, **changes)


# --- COCO annotations: (annotation or image change, error fragment) ---------------------------------

BAD_ANNOTATIONS = {
    'NaN in a polygon': (_ann(segmentation=[[10.0, 10.0, NAN, 10.0, 20.0, 30.0]]),
                         'polygon 0 holds NaN or inf coordinates'),
    'inf in a polygon': (_ann(segmentation=[TRIANGLE, [1.0, 1.0, INF, 2.0, 3.0, 3.0]]),
                         'polygon 1 holds NaN or inf coordinates'),
    'polygon outside the image': (_ann(segmentation=[[10.0, 10.0, 90.0, 10.0, 20.0, 30.0]]),
                                  'polygon 0 spans x 10..90, y 10..30, outside the 64x48 image'),
    'negative polygon coordinates': (_ann(segmentation=[[-5.0, 10.0, 30.0, 10.0, 20.0, 30.0]]),
                                     'polygon 0 spans x -5..30, y 10..30, outside the 64x48 image'),
    'huge polygon coordinates': (_ann(segmentation=[[10.0, 10.0, 30.0, 1e12, 20.0, 30.0]]),
                                 'outside the 64x48 image'),
    'polygon of 2 points': (_ann(segmentation=[[10.0, 10.0, 30.0, 10.0]]),
                            'polygon 0 has 4 coordinates; a polygon needs at least 3 (x, y) points'),
    'polygon of an odd count': (_ann(segmentation=[TRIANGLE + [5.0]]), 'polygon 0 has 7 coordinates, not (x, y) pairs'),
    'empty polygon': (_ann(segmentation=[[]]), 'polygon 0 has 0 coordinates'),
    'null in a polygon': (_ann(segmentation=[[10.0, None, 30.0, 10.0, 20.0, 30.0]]),
                          'polygon 0 [10.0, None, 30.0, 10.0, 20.0, 30.0] is not a list of numbers'),
    'empty segmentation list': (_ann(segmentation=[]),
                                'segmentation is empty ([]), but the pipeline loads masks'),
    'no segmentation': ({key: value for key, value in GOOD.items() if key != 'segmentation'},
                        'segmentation is missing, but the pipeline loads masks'),
    'zero box width': (_ann(bbox=[10.0, 10.0, 0.0, 20.0]), 'bbox [10.0, 10.0, 0.0, 20.0] has a width or height <= 0'),
    'negative box height': (_ann(bbox=[10.0, 10.0, 5.0, -2.0]), 'has a width or height <= 0'),
    'NaN in a box': (_ann(bbox=[10.0, NAN, 5.0, 5.0]), 'bbox [10.0, nan, 5.0, 5.0] holds NaN or inf'),
    'box outside the image': (_ann(bbox=[50.0, 10.0, 30.0, 20.0]),
                              'bbox [50.0, 10.0, 30.0, 20.0] spans x 50..80, y 10..30, outside the 64x48 image'),
    'box of 3 numbers': (_ann(bbox=[1.0, 2.0, 3.0]), 'bbox [1.0, 2.0, 3.0] is not [x, y, width, height]'),
    'NaN area': (_ann(area=NAN), 'area nan is NaN or inf'),
    'unknown category': (_ann(category_id=9), "category_id 9 is not among the file's categories [1, 2]"),
    'RLE of another size': (_ann(iscrowd=1, segmentation=dict(size=[10, 10], counts=[100])),
                            'RLE size [10, 10] is not the image size [height, width] = [48, 64]'),
    'RLE counts short of the image': (_ann(iscrowd=1, segmentation=dict(size=[HEIGHT, WIDTH], counts=[5, 5])),
                                      "RLE counts cover 10 pixels, not the image's 3072"),
    'negative RLE counts': (_ann(iscrowd=1, segmentation=dict(size=[HEIGHT, WIDTH], counts=[3080, -8])),
                            'RLE counts hold negative run lengths'),
}


@pytest.mark.parametrize('annotation, fragment', BAD_ANNOTATIONS.values(), ids=BAD_ANNOTATIONS.keys())
def test_a_bad_annotation_stops_the_build_naming_image_and_annotation(tmp_path, annotation, fragment):
    _coco(tmp_path, [dict(GOOD, id=6), annotation])
    with pytest.raises(BadAnnotationError) as error:
        _dataset(tmp_path)
    message = str(error.value)
    assert message.startswith(f'{tmp_path / "ann.json"}: image 1 (a.jpg), annotation 7: '), message
    assert fragment in message
    assert message.endswith("Fix or remove the annotation or skip bad annotations with on_bad_annotation='skip' "
                            'in the training dataset')


def test_an_evaluation_set_names_a_bad_annotation_without_offering_to_skip_it(tmp_path):
    _coco(tmp_path, [BAD_ANNOTATIONS['NaN in a polygon'][0]])
    with pytest.raises(BadAnnotationError, match=re.escape(
            'annotation 7: polygon 0 holds NaN or inf coordinates. Fix or remove the annotation (the evaluator reads '
            'this file too, so evaluation cannot skip it)')):
        _dataset(tmp_path, test_mode=True)


@pytest.mark.parametrize('image, fragment', [
    (dict(width=0), 'has width 0 and height 48; both must be positive numbers'),
    (dict(height=None), 'has width 64 and height None'),
    (dict(height=NAN), 'has width 64 and height nan'),
])
def test_a_bad_image_entry_is_named(tmp_path, image, fragment):
    _coco(tmp_path, [GOOD], image=image)
    with pytest.raises(BadAnnotationError, match=f'^{re.escape(str(tmp_path / "ann.json"))}: image 1 \\(a.jpg\\) '
                                                 f'{re.escape(fragment)}'):
        _dataset(tmp_path)


def test_a_bad_polygon_never_reaches_pycocotools(tmp_path, monkeypatch):
    """The NaN polygon that drove pycocotools' rasteriser out of memory: the build stops first."""
    import pycocotools.mask

    def rasterise(*args, **kwargs):
        raise AssertionError('a polygon reached pycocotools')

    monkeypatch.setattr(pycocotools.mask, 'frPyObjects', rasterise)
    _coco(tmp_path, [BAD_ANNOTATIONS['NaN in a polygon'][0]])
    with pytest.raises(BadAnnotationError, match='annotation 7: polygon 0 holds NaN'):
        _dataset(tmp_path, pipeline=[dict(type='CheckedLoadImageFromFile')] + WITH_MASKS)


@pytest.mark.slow
def test_a_nan_polygon_stops_training_before_it_starts(tmp_path):
    """The issue's case end to end: the detection demo with one NaN coordinate. Before the check, pycocotools'
    rasteriser grew the process until it was killed for memory; now train.py stops before the first
    iteration, naming the annotation, and writes no checkpoint."""
    from reliability_runner import REPO, run_python, run_train

    data = tmp_path / 'shapes_coco'
    made = run_python(REPO / 'tools' / 'dataset_converters' / 'make_shapes_demo.py', 'coco', '--out', data,
                      '--num-train', 4, '--num-val', 2, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    annotations = data / 'annotations' / 'instances_train2017.json'
    coco = json.loads(annotations.read_text())
    bad = coco['annotations'][2]
    bad['segmentation'][0][3] = NAN
    annotations.write_text(json.dumps(coco))
    result = run_train(REPO / 'configs' / 'detection' / 'mask-rcnn_vmamba-demo_shapes.py', '--work-dir',
                       tmp_path / 'run', '--cfg-options', f'train_dataloader.dataset.data_root={data}/',
                       f'val_dataloader.dataset.data_root={data}/', f'val_evaluator.ann_file={data}/annotations/'
                       'instances_val2017.json', cwd=tmp_path, timeout=300)
    assert result.returncode != 0
    assert (f"BadAnnotationError: {annotations}: image {bad['image_id']} ({bad['image_id'] - 1:06d}.jpg), "
            f"annotation {bad['id']}: polygon 0 holds NaN or inf coordinates.") in result.stderr, result.stderr[-3000:]
    assert not list((tmp_path / 'run').rglob('*.pth'))


# --- COCO annotations: the right result ------------------------------------------------------------

def test_good_annotations_give_mmdets_instances_and_masks(tmp_path):
    crowd = _ann(id=8, iscrowd=1, category_id=1, bbox=[0.0, 0.0, 2.0, 1.0],
                 segmentation=dict(size=[HEIGHT, WIDTH], counts=[0, 2, HEIGHT * WIDTH - 2]))
    border = _ann(id=9, segmentation=[[0.0, 0.0, 64.5, 0.0, 64.5, 48.5]], bbox=[0.0, 0.0, 64.5, 48.5])
    _coco(tmp_path, [GOOD, crowd, border])
    dataset = _dataset(tmp_path, pipeline=[dict(type='CheckedLoadImageFromFile')] + WITH_MASKS)
    sample = dataset[0]
    assert sample['gt_bboxes_labels'].tolist() == [1, 0, 1]
    assert sample['gt_ignore_flags'].tolist() == [False, True, False]
    masks = sample['gt_masks'].masks
    assert masks.shape == (3, HEIGHT, WIDTH) and masks[1].sum() == 2 and masks[1][0, 0] == 1
    assert 150 < masks[0].sum() < 260  # the triangle's 200 pixels, as pycocotools rasterises them
    assert dataset.skipped_annotations == []


def test_boxes_only_pipelines_accept_annotations_without_segmentation(tmp_path):
    _coco(tmp_path, [_ann(segmentation=[]), _ann(id=8, segmentation=None)])
    dataset = _dataset(tmp_path, pipeline=[dict(type='CheckedLoadImageFromFile')] + BOXES_ONLY)
    assert dataset[0]['gt_bboxes'].tensor.tolist() == [[10.0, 10.0, 30.0, 30.0]] * 2


def test_annotations_mmdet_leaves_out_are_still_left_out(tmp_path):
    """Boxes under a pixel and categories outside metainfo['classes'] are filters, not errors."""
    _coco(tmp_path, [GOOD, _ann(id=8, bbox=[10.0, 10.0, 0.5, 20.0]), _ann(id=9, category_id=1)])
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = CheckedCocoDataset(data_root=str(tmp_path), ann_file='ann.json', data_prefix=dict(img='img/'),
                                     metainfo=dict(classes=('square', )), pipeline=WITH_MASKS)
    assert [instance['bbox_label'] for instance in dataset.get_data_info(0)['instances']] == [0]


def test_skip_counts_and_reports_bad_annotations(tmp_path, mm_log):
    bad = [dict(annotation, id=10 + index) for index, annotation in enumerate((
        BAD_ANNOTATIONS['NaN in a polygon'][0], BAD_ANNOTATIONS['inf in a polygon'][0],
        BAD_ANNOTATIONS['empty segmentation list'][0]))]
    _coco(tmp_path, [GOOD] + bad)
    dataset = _dataset(tmp_path, on_bad_annotation='skip')
    assert [instance['bbox'] for instance in dataset.get_data_info(0)['instances']] == [[10.0, 10.0, 30.0, 30.0]]
    assert [(img_id, ann_id, kind) for img_id, ann_id, kind, _ in dataset.skipped_annotations] == [
        (1, 10, 'non-finite coordinates'), (1, 11, 'non-finite coordinates'), (1, 12, 'empty segmentation')]
    assert [message for message in mm_log if message.startswith('CheckedCocoDataset')] == [
        f'CheckedCocoDataset: skipped 3 of 4 annotations in {tmp_path / "ann.json"} (2 non-finite '
        'coordinates, 1 empty segmentation); the first: image 1, annotation 10: polygon 0 holds NaN or inf '
        'coordinates']


@pytest.mark.parametrize('kwargs, message', [
    (dict(on_bad_annotation='skip', test_mode=True),
     "on_bad_annotation='skip' is for training sets; in test mode the evaluator reads the annotation file itself"),
    (dict(on_bad_annotation='drop'), "on_bad_annotation must be one of ('raise', 'skip'), got 'drop'"),
])
def test_bad_dataset_options(tmp_path, kwargs, message):
    _coco(tmp_path, [GOOD])
    with pytest.raises(ValueError, match=f'^CheckedCocoDataset: {re.escape(message)}'):
        _dataset(tmp_path, **kwargs)


# --- images ------------------------------------------------------------------------------------------

def _png_of_zero_width(path):
    """A PNG whose header says 0x8 pixels (a valid signature and IHDR chunk, nothing to decode)."""
    import struct
    import zlib

    header = struct.pack('>IIBBBBB', 0, 8, 8, 0, 0, 0, 0)
    chunk = b'IHDR' + header
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + struct.pack('>I', len(header)) + chunk
                     + struct.pack('>I', zlib.crc32(chunk)))
    return path


@pytest.mark.parametrize('make, reason', [
    (lambda path: path.write_bytes(b''), ''),  # 0 bytes
    (_png_of_zero_width, 'the decoder cannot read it'),  # 0 pixels
    (lambda path: path.write_bytes(b'GIF89a' + bytes(20)), 'the decoder cannot read it'),
    (lambda path: None, 'FileNotFoundError'),
], ids=['0 bytes', '0 pixels', 'truncated', 'missing'])
def test_an_unreadable_image_is_named(tmp_path, make, reason):
    path = tmp_path / 'image.png'
    make(path)
    with pytest.raises(UnreadableImageError, match=f'^image {re.escape(str(path))} cannot be loaded: {reason}'):
        CheckedLoadImageFromFile()(dict(img_path=str(path)))


def test_evaluation_never_substitutes_an_unreadable_image(tmp_path, mm_log):
    """A skipping loader in a test-mode dataset stops at the unreadable image instead of scoring another."""
    from mmpretrain.datasets import CustomDataset

    for label in ('0', '1'):
        (tmp_path / label).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / label / 'a.png')
    (tmp_path / '1' / 'a.png').write_bytes(b'')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = CustomDataset(data_root=str(tmp_path), test_mode=True,
                                pipeline=[dict(type='CheckedLoadImageFromFile', on_error='skip')])
    with pytest.raises(Exception, match='Test time pipline should not get `None` data_sample'):
        dataset[1]
    assert mm_log[-1].startswith(f'CheckedLoadImageFromFile: skipped image {tmp_path / "1" / "a.png"}')


# --- labels ------------------------------------------------------------------------------------------

SEG_LABELS = {
    'a label past the classes': ([[0, 1], [7, 255]], False, 'holds labels 7 outside the 4 classes (0-3) and the '
                                                            'ignore index 255. Fix the map'),
    'many labels past the classes': ([list(range(4, 14)), [0] * 10], False, 'holds labels 4, 5, 6, 7, 8, 9, 10, 11 '
                                                                            'and 2 more outside'),
    'after reduce_zero_label': ([[0, 200]], True, 'holds labels 200 outside the 4 classes (0-3) and the ignore index '
                                                  '255 (after reduce_zero_label: 0 became the ignore index'),
    'classes and ignore index': ([[0, 1, 2], [3, 255, 255]], False, None),
}


@pytest.mark.parametrize('labels, reduced, fragment', SEG_LABELS.values(), ids=SEG_LABELS.keys())
def test_segmentation_labels_outside_the_classes_name_the_map(labels, reduced, fragment):
    results = dict(gt_seg_map=np.array(labels, np.uint8), seg_map_path='ann/0042.png', reduce_zero_label=reduced)
    check = CheckSegLabels(num_classes=4)
    if fragment is None:
        assert check(dict(results)) == results
        return
    with pytest.raises(LabelOutOfRangeError, match=f'^segmentation map ann/0042.png {re.escape(fragment)}'):
        check(results)


CLASS_LABELS = {
    'a label past the classes': (12, 'has label 12 outside the 10 classes (0-9)'),
    'a negative label': (-1, 'has label -1 outside the 10 classes (0-9)'),
    'a multi-label list': ([1, 11, 3], 'has label 11 outside'),
    'the last class': (9, None),
}


@pytest.mark.parametrize('label, fragment', CLASS_LABELS.values(), ids=CLASS_LABELS.keys())
def test_classification_labels_outside_the_classes_name_the_sample(label, fragment):
    results = dict(gt_label=label, img_path='train/9/0042.png')
    if fragment is None:
        assert CheckClassLabels(num_classes=10)(dict(results)) == results
        return
    with pytest.raises(LabelOutOfRangeError, match=f'^sample train/9/0042.png {re.escape(fragment)}'):
        CheckClassLabels(num_classes=10)(results)


@pytest.mark.parametrize('check, kwargs, message', [
    (CheckSegLabels, dict(num_classes=0), 'CheckSegLabels: num_classes must be a positive integer, got 0'),
    (CheckClassLabels, dict(num_classes=2.5), 'CheckClassLabels: num_classes must be a positive integer, got 2.5'),
])
def test_bad_label_check_options(check, kwargs, message):
    with pytest.raises(ValueError, match=f'^{re.escape(message)}$'):
        check(**kwargs)


def test_a_class_folder_past_the_heads_classes_stops_the_dataset(tmp_path):
    """mmpretrain's folder dataset numbers 3 folders 0..2; a 2-class check names the third folder's sample."""
    from mmpretrain.datasets import CustomDataset

    for label in ('a', 'b', 'c'):
        (tmp_path / label).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / label / 'x.png')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = CustomDataset(data_root=str(tmp_path), pipeline=[dict(type='CheckedLoadImageFromFile'),
                                                                   dict(type='CheckClassLabels', num_classes=2)])
    assert dataset[0]['gt_label'] == 0
    with pytest.raises(LabelOutOfRangeError, match=f'^sample {re.escape(str(tmp_path / "c" / "x.png"))} has label 2'):
        dataset[2]


# --- data settings -----------------------------------------------------------------------------------

def _seg_cfg(batch_size, norm='BN'):
    return ConfigDict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=10),
        train_dataloader=dict(batch_size=batch_size),
        model=dict(decode_head=dict(type='UPerHead', pool_scales=(1, 2, 3, 6), norm_cfg=dict(type=norm)),
                   auxiliary_head=dict(type='FCNHead', norm_cfg=dict(type=norm))))


BATCHES = {
    'BN at batch 1': (_seg_cfg(1), 1, 'train_dataloader.batch_size is 1, so the BN after the 1x1 pooling of '
                                      'model.decode_head (UPerHead) normalises one value per channel'),
    'SyncBN at batch 1 on one process': (_seg_cfg(1, 'SyncBN'), 1, 'train_dataloader.batch_size is 1 over 1 '
                                                                    'processes, so the SyncBN'),
    'SyncBN at batch 1 on 8 processes': (_seg_cfg(1, 'SyncBN'), 8, None),
    'BN at batch 1 on 8 processes': (_seg_cfg(1), 8, 'train_dataloader.batch_size is 1, so the BN'),
    'BN at batch 2': (_seg_cfg(2), 1, None),
    'GN at batch 1': (_seg_cfg(1, 'GN'), 1, None),
    'testing only': (ConfigDict(_seg_cfg(1), train_cfg=None), 1, None),
}


@pytest.mark.parametrize('cfg, world_size, fragment', BATCHES.values(), ids=BATCHES.keys())
def test_a_batch_too_small_for_batch_norm_says_what_to_change(cfg, world_size, fragment):
    if fragment is None:
        check_batch_norm_batch_size(cfg, world_size)
        return
    with pytest.raises(DataConfigError) as error:
        check_batch_norm_batch_size(cfg, world_size)
    assert str(error.value).startswith(fragment)
    assert str(error.value).endswith(
        "Train with train_dataloader.batch_size >= 2 per GPU, or SyncBN over 2 or more GPUs (model.decode_head."
        "norm_cfg=dict(type='SyncBN', requires_grad=True)), or a norm that does not use the batch "
        "(model.decode_head.norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)).")


@pytest.mark.parametrize('batch_size', [1, 2])
def test_the_batch_check_tells_the_truth_about_upernet(batch_size):
    """The demo's UperNet (BN heads) trains at batch 2, and at batch 1 fails as the check says it would."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from reliability_runner import REPO

    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(REPO / 'configs' / 'segmentation' / 'upernet_vmamba-demo_shapes.py')
    cfg.train_dataloader.batch_size = batch_size
    segmentor = MODELS.build(cfg.model).train()
    images = torch.rand(batch_size, 3, 64, 64)
    if batch_size == 1:
        with pytest.raises(DataConfigError):
            check_batch_norm_batch_size(cfg)
        with pytest.raises(ValueError, match='Expected more than 1 value per channel when training'):
            segmentor.decode_head(segmentor.extract_feat(images))
    else:
        check_batch_norm_batch_size(cfg)
        assert segmentor.decode_head(segmentor.extract_feat(images)).shape == (2, 4, 16, 16)


PIPELINES = {
    'skip in val': (dict(val_dataloader=dict(dataset=dict(pipeline=[
        dict(type='CheckedLoadImageFromFile', on_error='skip')]))), 'val_dataloader.dataset.pipeline'),
    'skip in a wrapped test set': (dict(test_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
        dict(pipeline=[]), dict(pipeline=[dict(type='CheckedLoadImageFromFile', on_error='skip')])]))),
        'test_dataloader.dataset.datasets[1].pipeline'),
    'skip in the TTA pipeline': (dict(tta_pipeline=[dict(type='TestTimeAug', transforms=[
        [dict(type='CheckedLoadImageFromFile', on_error='skip')]])]), 'tta_pipeline'),
    'skip in training only': (dict(
        train_dataloader=dict(dataset=dict(pipeline=[dict(type='CheckedLoadImageFromFile', on_error='skip')])),
        val_dataloader=dict(dataset=dict(pipeline=[dict(type='CheckedLoadImageFromFile')]))), None),
}


@pytest.mark.parametrize('cfg, key', PIPELINES.values(), ids=PIPELINES.keys())
def test_evaluation_pipelines_may_not_skip_images(cfg, key):
    if key is None:
        check_data_pipelines(ConfigDict(cfg))
        return
    with pytest.raises(DataConfigError, match=f"^{re.escape(key)} loads images with on_error='skip': evaluation "
                                              'would score other images in place of the unreadable ones'):
        check_data_pipelines(ConfigDict(cfg))


# --- half-precision models ---------------------------------------------------------------------------

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('vanilla', [False, True], ids=['v2', 'v0'])
def test_a_model_cast_to_half_precision_infers_like_float32(device, dtype, vanilla):
    from vmamba_mm.models import VMamba

    torch.manual_seed(0)
    arch = dict(dims=16, depths=(1, 1), ssm_ratio=2.0 if vanilla else 1.0, d_state=4 if vanilla else 1)
    if vanilla:
        arch.update(vanilla=True)
    model = VMamba(arch, out_indices=(0, 1)).to(device).eval()
    x = torch.randn(2, 3, 32, 32, device=device)
    with torch.no_grad():
        expected = model(x)
        outputs = (model.half() if dtype == torch.float16 else model.bfloat16())(x.to(dtype))
    for out, ref in zip(outputs, expected):
        assert out.dtype == dtype and torch.isfinite(out).all()
        # The half inputs and weights are rounded once: relative errors of about one unit of the dtype's epsilon.
        error = (out.float() - ref).norm() / ref.norm()
        assert error < 4 * torch.finfo(dtype).eps, error.item()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_a_whole_classifier_cast_to_half_precision_predicts_from_its_preprocessed_images(dtype):
    """The data preprocessor hands a cast model float32 images; the backbone takes them in its own dtype."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import vmamba_mm.registry  # noqa: F401

    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = _tiny_classifier(MODELS)
    images = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    with torch.no_grad():
        expected = classifier.test_step(dict(inputs=images))
        predicted = (classifier.half() if dtype == torch.float16 else classifier.bfloat16()).test_step(
            dict(inputs=images))
    for sample, reference in zip(predicted, expected):
        assert sample.pred_score.dtype == dtype
        torch.testing.assert_close(sample.pred_score.float(), reference.pred_score, atol=0.02, rtol=0)


def _tiny_classifier(models):
    return models.build(dict(
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
        backbone=dict(type='VMamba', arch=dict(dims=16, depths=(1, 1), ssm_ratio=1.0, d_state=1), out_indices=(1, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32))).eval()
