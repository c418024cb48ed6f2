"""The COCO Mask R-CNN configs: the official VMamba recipe, the paper's model sizes, and a real training step."""
import math

import pytest
import torch
from mmengine.config import Config
from torch import nn

import vmamba_mm.registry  # noqa: F401 (registers VMamba)
from shapes_demo_data import REPO, load_module, make_shapes_demo

CONFIGS = REPO / 'configs' / 'detection'
RELEASES = 'https://github.com/MzeroMiko/VMamba/releases/download/%23v2cls/'

# size -> (drop path rate, FPN in_channels, ImageNet checkpoint, params in millions as the paper rounds them),
# from the official detection/configs/vssm1 files and the paper's table.
SIZES = {
    'tiny': (0.2, [96, 192, 384, 768], 'vssm1_tiny_0230s_ckpt_epoch_264.pth', 50),
    'small': (0.3, [96, 192, 384, 768], 'vssm_small_0229_ckpt_epoch_222.pth', 70),
    'base': (0.6, [128, 256, 512, 1024], 'vssm_base_0229_ckpt_epoch_237.pth', 108),
}
# schedule -> (epochs, lr steps)
SCHEDULES = {'1x': (12, [8, 11]), 'ms-3x': (36, [27, 33])}
CONFIG_NAMES = {(size, schedule): f'mask-rcnn_vmamba-{size}_fpn_{schedule}_coco.py'
                for size in SIZES for schedule in SCHEDULES}
TINY_ARCH = dict(dims=16, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1)
SHAPE_CLASSES = ('circle', 'square', 'triangle')


def load(name):
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return Config.fromfile(CONFIGS / name)


def build_detector(model_cfg):
    from mmdet.registry import MODELS

    return MODELS.build(model_cfg)


def step_of(pipeline, type_name):
    (step, ) = [step for step in pipeline if step['type'] == type_name]
    return step


@pytest.fixture(scope='module')
def shapes_coco(tmp_path_factory):
    return make_shapes_demo('coco', tmp_path_factory.mktemp('data') / 'shapes_coco')


@pytest.mark.parametrize('size, schedule', sorted(CONFIG_NAMES))
def test_recipe_is_the_official_one(size, schedule):
    cfg = load(CONFIG_NAMES[size, schedule])
    drop_path_rate, in_channels, checkpoint, _ = SIZES[size]
    assert cfg.default_scope == 'mmdet' and 'vmamba_mm' in cfg.custom_imports.imports
    backbone = cfg.model.backbone
    assert (cfg.model.type, backbone.type, backbone.arch, backbone.drop_path_rate, backbone.out_indices) == (
        'MaskRCNN', 'VMamba', size, drop_path_rate, (0, 1, 2, 3))
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=RELEASES + checkpoint)
    assert (cfg.model.neck.in_channels, cfg.model.neck.out_channels, cfg.model.neck.num_outs) == (in_channels, 256, 5)
    assert cfg.model.roi_head.bbox_head.num_classes == cfg.model.roi_head.mask_head.num_classes == 80

    # AdamW 1e-4 for 8 GPUs x 2 images; backbone norms decayed as the official configs decay them
    # (tests/configs/test_downstream_weight_decay.py checks every parameter).
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05,
                                               fused=True)
    assert cfg.optim_wrapper.paramwise_cfg == dict(custom_keys={
        'norm': dict(decay_mult=0.), 'patch_embed.norm': dict(decay_mult=1.), 'downsample.norm': dict(decay_mult=1.)})
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 16

    epochs, steps = SCHEDULES[schedule]
    assert (cfg.train_cfg.type, cfg.train_cfg.max_epochs) == ('ResumableEpochBasedTrainLoop', epochs)
    warmup, multistep = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.by_epoch, warmup.begin, warmup.end) == (
        'LinearLR', 0.001, False, 0, 1000)
    assert (multistep.type, multistep.milestones, multistep.gamma, multistep.end) == (
        'MultiStepLR', steps, 0.1, epochs)

    data_root = 'data/coco/'
    for loader, split in ((cfg.train_dataloader, 'train'), (cfg.val_dataloader, 'val'), (cfg.test_dataloader, 'val')):
        assert (loader.dataset.data_root, loader.dataset.ann_file, loader.dataset.data_prefix) == (
            data_root, f'annotations/instances_{split}2017.json', dict(img=f'{split}2017/'))
    evaluator = {key: value for key, value in cfg.test_evaluator.items() if key != '_scope_'}
    assert evaluator == dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json',
                             metric=['bbox', 'segm'], format_only=False, backend_args=None)
    resize = step_of(cfg.test_dataloader.dataset.pipeline, 'Resize')
    assert (resize.scale, resize.keep_ratio) == ((1333, 800), True)
    train = cfg.train_dataloader.dataset.pipeline
    assert step_of(train, 'RandomFlip').prob == 0.5
    if schedule == '1x':
        assert step_of(train, 'Resize').scale == (1333, 800)
    else:
        multi_scale = [(short, 1333) for short in range(480, 801, 32)]
        whole, cropped = step_of(train, 'RandomChoice').transforms
        assert whole == [dict(type='RandomChoiceResize', scales=multi_scale, keep_ratio=True)]
        assert [step['type'] for step in cropped] == ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']
        assert cropped[0].scales == [(400, 1333), (500, 1333), (600, 1333)]
        assert (cropped[1].crop_type, cropped[1].crop_size) == ('absolute_range', (384, 600))
        assert cropped[2].scales == multi_scale


@pytest.mark.parametrize('size', sorted(SIZES))
def test_every_config_builds_the_paper_model(size):
    model_cfg = load(CONFIG_NAMES[size, '1x']).model
    assert load(CONFIG_NAMES[size, 'ms-3x']).model == model_cfg  # 3x differs in data and schedule only
    detector = build_detector(model_cfg)
    params = sum(param.numel() for param in detector.parameters())
    assert round(params / 1e6) == SIZES[size][3]


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
def test_lr_schedule(schedule):
    """1000-iteration linear warm-up from 1e-7 to 1e-4, then / 10 after each step epoch."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = load(CONFIG_NAMES['tiny', schedule])
    epochs, steps = SCHEDULES[schedule]
    epoch_length = 1500  # COCO has 7330 iterations per epoch at batch 16; any length past the warm-up will do
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(scheduler, default_args=dict(optimizer=OptimWrapper(optimizer),
                                                                       epoch_length=epoch_length))
                  for scheduler in cfg.param_scheduler]
    for epoch in range(epochs):
        for iteration in range(epoch_length):
            step = epoch * epoch_length + iteration
            expected = 1e-4 * 0.1**sum(epoch >= milestone for milestone in steps)
            if step < 1000:  # mmengine's LinearLR reaches the full rate at the warm-up's last iteration
                expected *= 0.001 + 0.999 * step / 999
            assert optimizer.param_groups[0]['lr'] == pytest.approx(expected, rel=1e-6), (epoch, iteration)
            for scheduler in schedulers:
                if not scheduler.by_epoch:
                    scheduler.step()
        for scheduler in schedulers:
            if scheduler.by_epoch:
                scheduler.step()


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
def test_train_pipeline_on_coco_format_data(schedule, shapes_coco):
    from mmdet.registry import DATASETS

    cfg = load(CONFIG_NAMES['tiny', schedule])
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=f'{shapes_coco}/',
                                  metainfo=dict(classes=SHAPE_CLASSES)))
    short_sides = set(range(480, 801, 32)) if schedule == 'ms-3x' else {800}
    for index in range(len(dataset)):
        sample = dataset[index]
        height, width = sample['inputs'].shape[1:]
        assert min(height, width) in short_sides and max(height, width) <= 1333
        instances = sample['data_samples'].gt_instances
        assert instances.masks.masks.shape[1:] == (height, width)
        assert ((instances.bboxes.tensor >= 0).all() and (instances.bboxes.tensor[:, 2] <= width).all()
                and (instances.bboxes.tensor[:, 3] <= height).all())


def test_official_classification_checkpoint_loads_into_the_detector(tmp_path):
    from mmdet.registry import MODELS
    from vmamba_mm.converters import IncompatibleCheckpointError

    to_official = load_module(REPO / 'tests' / 'converters' / 'official_layout.py').to_official
    backbone = MODELS.build(dict(type='VMamba', arch=TINY_ARCH))
    weights = {key: torch.randn_like(value) for key, value in backbone.state_dict().items()}
    classifier = {'head.fc.weight': torch.randn(1000, 128), 'head.fc.bias': torch.randn(1000)}
    official = to_official({**weights, **classifier})
    torch.save({'model': official, 'epoch': 299}, tmp_path / 'official.pth')
    torch.save({'model': {**official, 'layers.0.blocks.0.op.unknown': torch.zeros(1)}}, tmp_path / 'bad.pth')

    cfg = load(CONFIG_NAMES['tiny', '1x'])
    cfg.model.backbone.arch = TINY_ARCH
    cfg.model.neck.in_channels = [16, 32, 64, 128]
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'official.pth')
    detector = build_detector(cfg.model)
    detector.init_weights()
    loaded = detector.backbone.state_dict()
    # The official classifier's norm is not carried over: every outnorm of the detector is a new layer.
    assert {key for key in loaded if key not in weights or key.startswith('outnorm')} == {
        f'outnorm{i}.{p}' for i in range(4) for p in ('weight', 'bias')}
    assert all(torch.equal(loaded[key], value) for key, value in weights.items() if not key.startswith('outnorm'))

    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'bad.pth')
    with pytest.raises(IncompatibleCheckpointError, match='unknown'):
        build_detector(cfg.model).init_weights()


def test_tiny_detector_trains_one_iteration(shapes_coco):
    """VMamba-T Mask R-CNN as configured, on 2 demo images at 128x128: a finite loss, a gradient everywhere."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    cfg = load(CONFIG_NAMES['tiny', '1x'])
    cfg.model.backbone.init_cfg = None  # no download; the architecture is what is tested
    pipeline = [dict(step, scale=(128, 128)) if step['type'] == 'Resize' else step
                for step in cfg.train_dataloader.dataset.pipeline]
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=f'{shapes_coco}/', pipeline=pipeline,
                                  metainfo=dict(classes=SHAPE_CLASSES)))
    torch.manual_seed(0)
    detector = build_detector(cfg.model)
    detector.init_weights()
    detector.train()
    data = detector.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    assert data['inputs'].shape[-2:] == (128, 128)
    losses = detector(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    loss, _ = detector.parse_losses(losses)
    assert math.isfinite(loss.item())
    loss.backward()
    no_grad = [name for name, param in detector.named_parameters() if param.grad is None]
    assert not no_grad
    assert all(torch.isfinite(param.grad).all() for param in detector.parameters())
    for part in (detector.backbone.patch_embed, detector.backbone.stages[3], detector.neck, detector.rpn_head,
                 detector.roi_head.bbox_head, detector.roi_head.mask_head):
        assert any(param.grad.abs().sum() > 0 for param in part.parameters())


RETINANET = 'retinanet_vmamba-tiny_fpn_1x_coco.py'


def test_retinanet_recipe_is_the_mask_rcnn_one_on_boxes():
    """RetinaNet on VMamba-T: mmdet's RetinaNet head on P3-P7, the backbone, optimizer and schedule of the
    VMamba-T Mask R-CNN 1x config, COCO read and evaluated as boxes only."""
    cfg, mask_rcnn = load(RETINANET), load(CONFIG_NAMES['tiny', '1x'])
    assert cfg.default_scope == 'mmdet' and 'vmamba_mm' in cfg.custom_imports.imports
    backbone = cfg.model.backbone
    assert (cfg.model.type, backbone.out_indices) == ('RetinaNet', (1, 2, 3))
    assert {key: value for key, value in backbone.items() if key != 'out_indices'} == {
        key: value for key, value in mask_rcnn.model.backbone.items() if key != 'out_indices'}
    neck = cfg.model.neck
    assert (neck.type, neck.in_channels, neck.out_channels, neck.start_level, neck.add_extra_convs, neck.num_outs) == (
        'FPN', [192, 384, 768], 256, 0, 'on_input', 5)
    head = cfg.model.bbox_head
    assert (head.type, head.num_classes, head.in_channels, head.loss_cls.type) == ('RetinaHead', 80, 256, 'FocalLoss')
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'auto_scale_lr'):
        assert cfg[key] == mask_rcnn[key], key
    assert cfg.train_dataloader.batch_size == mask_rcnn.train_dataloader.batch_size == 2

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset, with_masks = cfg[loader].dataset, mask_rcnn[loader].dataset
        assert {key: value for key, value in dataset.items() if key != 'pipeline'} == {
            key: value for key, value in with_masks.items() if key != 'pipeline'}
        assert dataset.pipeline == [{key: value for key, value in step.items() if key != 'with_mask'}
                                    for step in with_masks.pipeline]
    evaluator = {key: value for key, value in cfg.test_evaluator.items() if key != '_scope_'}
    assert evaluator == dict(type='CocoMetric', ann_file='data/coco/annotations/instances_val2017.json',
                             metric='bbox', format_only=False, backend_args=None)


def test_retinanet_pyramid_matches_its_anchors():
    """The VMamba-T RetinaNet as configured: the FPN takes the backbone's outputs, and its five levels have the
    strides the anchor generator places anchors at."""
    cfg = load(RETINANET)
    cfg.model.backbone.init_cfg = None  # no download; the architecture is what is tested
    detector = build_detector(cfg.model).eval()
    size = 256
    with torch.no_grad():
        features = detector.extract_feat(torch.zeros(1, 3, size, size))
    width, strides = cfg.model.neck.out_channels, cfg.model.bbox_head.anchor_generator.strides
    assert [tuple(level.shape[1:]) for level in features] == [(width, size // stride, size // stride)
                                                             for stride in strides]
