"""The ADE20K UperNet configs: the official VMamba recipe, the paper's model sizes, TTA, and a real training step."""
import math

import pytest
import torch
from mmengine.config import Config
from torch import nn

import vmamba_mm.registry  # noqa: F401 (registers VMamba)
from shapes_demo_data import REPO, make_shapes_demo

CONFIGS = REPO / 'configs' / 'segmentation'
RELEASES = 'https://github.com/MzeroMiko/VMamba/releases/download/%23v2cls/'

# size -> (drop path rate, stage dims, ImageNet checkpoint, params in millions as the paper rounds them),
# from the official segmentation/configs/vssm1 files and the paper's table.
SIZES = {
    'tiny': (0.2, [96, 192, 384, 768], 'vssm1_tiny_0230s_ckpt_epoch_264.pth', 62),
    'small': (0.3, [96, 192, 384, 768], 'vssm_small_0229_ckpt_epoch_222.pth', 82),
    'base': (0.6, [128, 256, 512, 1024], 'vssm_base_0229_ckpt_epoch_237.pth', 122),
}
CONFIG_NAMES = {size: f'upernet_vmamba-{size}_8xb2-160k_ade20k-512x512.py' for size in SIZES}


def load(name):
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return Config.fromfile(CONFIGS / name)


def build_segmentor(model_cfg):
    from mmseg.registry import MODELS

    return MODELS.build(model_cfg)


def step_of(pipeline, type_name):
    (step, ) = [step for step in pipeline if step['type'] == type_name]
    return step


@pytest.fixture(scope='module')
def shapes_ade(tmp_path_factory):
    return make_shapes_demo('ade', tmp_path_factory.mktemp('data') / 'shapes_ade')


@pytest.mark.parametrize('size', sorted(SIZES))
def test_recipe_is_the_official_one(size):
    cfg = load(CONFIG_NAMES[size])
    drop_path_rate, dims, checkpoint, _ = SIZES[size]
    assert cfg.default_scope == 'mmseg' and 'vmamba_mm' in cfg.custom_imports.imports
    model = cfg.model
    backbone, decode, auxiliary = model.backbone, model.decode_head, model.auxiliary_head
    assert (model.type, backbone.type, backbone.arch, backbone.drop_path_rate, backbone.out_indices) == (
        'EncoderDecoder', 'VMamba', size, drop_path_rate, (0, 1, 2, 3))
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=RELEASES + checkpoint)
    assert model.data_preprocessor.size == (512, 512) and model.data_preprocessor.seg_pad_val == 255
    assert (decode.type, decode.in_channels, decode.in_index, decode.channels, decode.pool_scales) == (
        'UPerHead', dims, [0, 1, 2, 3], 512, (1, 2, 3, 6))
    assert (auxiliary.type, auxiliary.in_channels, auxiliary.in_index, auxiliary.channels) == (
        'FCNHead', dims[2], 2, 256)
    assert decode.loss_decode.loss_weight == 1.0 and auxiliary.loss_decode.loss_weight == 0.4
    for head in (decode, auxiliary):
        assert (head.num_classes, head.norm_cfg.type, head.dropout_ratio, head.align_corners) == (
            150, 'SyncBN', 0.1, False)
    assert model.test_cfg == dict(mode='whole')

    # AdamW 6e-5 for 8 GPUs x 2 images, backbone norms decayed as the official configs decay them
    # (tests/configs/test_downstream_weight_decay.py checks every parameter); 160k iterations, 1500 warm-up.
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01,
                                               fused=True)
    assert cfg.optim_wrapper.paramwise_cfg == dict(custom_keys={
        'norm': dict(decay_mult=0.), 'patch_embed.norm': dict(decay_mult=1.), 'downsample.norm': dict(decay_mult=1.)})
    assert cfg.train_dataloader.batch_size == 2
    assert (cfg.train_cfg.type, cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (
        'ResumableIterBasedTrainLoop', 160000, 16000)
    assert (cfg.default_hooks.checkpoint.interval, cfg.default_hooks.checkpoint.by_epoch) == (16000, False)

    data_root = 'data/ade/ADEChallengeData2016'
    for loader, split in ((cfg.train_dataloader, 'training'), (cfg.val_dataloader, 'validation'),
                          (cfg.test_dataloader, 'validation')):
        assert (loader.dataset.type, loader.dataset.data_root, loader.dataset.data_prefix) == (
            'ADE20KDataset', data_root, dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'))
    assert cfg.test_evaluator.type == 'IoUMetric' and cfg.test_evaluator.iou_metrics == ['mIoU']
    train = cfg.train_dataloader.dataset.pipeline
    assert step_of(train, 'LoadAnnotations').reduce_zero_label
    resize = step_of(train, 'RandomResize')
    assert (resize.scale, resize.ratio_range, resize.keep_ratio) == ((2048, 512), (0.5, 2.0), True)
    crop = step_of(train, 'RandomCrop')
    assert (crop.crop_size, crop.cat_max_ratio) == ((512, 512), 0.75)
    assert step_of(train, 'RandomFlip').prob == 0.5
    assert step_of(train, 'PhotoMetricDistortion')
    resize = step_of(cfg.test_dataloader.dataset.pipeline, 'Resize')
    assert (resize.scale, resize.keep_ratio) == ((2048, 512), True)

    # --tta: every scale 0.5-1.75 with and without a horizontal flip, merged by SegTTAModel.
    assert cfg.tta_model.type == 'SegTTAModel'
    scales, flips, *_ = step_of(cfg.tta_pipeline, 'TestTimeAug').transforms
    assert [step.scale_factor for step in scales] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert [(step.prob, step.direction) for step in flips] == [(0.0, 'horizontal'), (1.0, 'horizontal')]


@pytest.mark.parametrize('size', sorted(SIZES))
def test_every_config_builds_the_paper_model(size):
    segmentor = build_segmentor(load(CONFIG_NAMES[size]).model)
    params = sum(param.numel() for param in segmentor.parameters())
    assert round(params / 1e6) == SIZES[size][3]


def test_lr_schedule():
    """Linear warm-up from 6e-11 over 1500 iterations, then linear decay to 0 at the end of 160k."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = load(CONFIG_NAMES['tiny'])
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(scheduler, default_args=dict(optimizer=OptimWrapper(optimizer)))
                  for scheduler in cfg.param_scheduler]
    checked = {0, 1, 750, 1499, 1500, 1501, 80000, 159999}
    for step in range(160000):
        if step in checked:
            # mmengine's schedulers reach their end value at their last iteration (end - 1).
            if step < 1500:
                expected = 6e-5 * (1e-6 + (1 - 1e-6) * step / 1499)
            else:
                expected = 6e-5 * (1 - (step - 1500) / (160000 - 1500 - 1))
            assert optimizer.param_groups[0]['lr'] == pytest.approx(expected, rel=1e-6, abs=1e-15), step
        for scheduler in schedulers:
            scheduler.step()


def test_tiny_segmentor_trains_one_iteration(shapes_ade):
    """VMamba-T UperNet as configured (SyncBN as BN), 2 ADE-layout images at a 128x128 crop."""
    from mmengine.dataset import pseudo_collate
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import DATASETS

    cfg = load(CONFIG_NAMES['tiny'])
    cfg.model.backbone.init_cfg = None  # no download; the architecture is what is tested
    cfg.model.data_preprocessor.size = (128, 128)
    small = dict(RandomResize=dict(scale=(512, 128)), RandomCrop=dict(crop_size=(128, 128)))
    pipeline = [dict(step, **small.get(step['type'], {})) for step in cfg.train_dataloader.dataset.pipeline]
    # The demo's labels 0..4 are ADE20K-style (0 unlabelled), within ADE20K's 150 classes after reduce_zero_label.
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(shapes_ade), pipeline=pipeline))
    torch.manual_seed(0)
    segmentor = revert_sync_batchnorm(build_segmentor(cfg.model))
    segmentor.init_weights()
    segmentor.train()
    data = segmentor.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    assert data['inputs'].shape[-2:] == (128, 128)
    labels = torch.cat([sample.gt_sem_seg.data.unique() for sample in data['data_samples']])
    assert set(labels.tolist()) <= {0, 1, 2, 3, 255} and 255 in labels
    losses = segmentor(**data, mode='loss')
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    loss, _ = segmentor.parse_losses(losses)
    assert math.isfinite(loss.item())
    # An untrained 150-way classifier: cross-entropy near ln(150), the auxiliary head at 0.4 of it.
    assert 0.5 * 1.4 * math.log(150) < loss.item() < 2 * 1.4 * math.log(150)
    loss.backward()
    no_grad = [name for name, param in segmentor.named_parameters() if param.grad is None]
    assert not no_grad
    assert all(torch.isfinite(param.grad).all() for param in segmentor.parameters())
    for part in (segmentor.backbone.patch_embed, segmentor.backbone.stages[3], segmentor.decode_head,
                 segmentor.auxiliary_head):
        assert any(param.grad.abs().sum() > 0 for param in part.parameters())


SEMANTIC_FPN = 'fpn_vmamba-tiny_8xb4-40k_ade20k-512x512.py'


def test_semantic_fpn_recipe():
    """Semantic FPN on VMamba-T: the UperNet config's backbone and ADE20K data, mmseg's FPN neck and FPNHead,
    and the 40k-iteration AdamW recipe of mmseg's PoolFormer Semantic FPNs for 8 GPUs x 4 images."""
    cfg, upernet = load(SEMANTIC_FPN), load(CONFIG_NAMES['tiny'])
    assert cfg.default_scope == 'mmseg' and 'vmamba_mm' in cfg.custom_imports.imports
    model = cfg.model
    assert (model.type, model.backbone, model.data_preprocessor, model.test_cfg) == (
        'EncoderDecoder', upernet.model.backbone, upernet.model.data_preprocessor, upernet.model.test_cfg)
    assert 'auxiliary_head' not in model
    neck, head = model.neck, model.decode_head
    assert (neck.type, neck.in_channels, neck.out_channels, neck.num_outs) == ('FPN', SIZES['tiny'][1], 256, 4)
    assert (head.type, head.in_channels, head.in_index, head.feature_strides, head.channels) == (
        'FPNHead', [256] * 4, [0, 1, 2, 3], [4, 8, 16, 32], 128)
    assert (head.num_classes, head.norm_cfg.type, head.dropout_ratio, head.align_corners) == (150, 'SyncBN', 0.1, False)

    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4,
                                               fused=True)
    assert cfg.optim_wrapper.paramwise_cfg == upernet.optim_wrapper.paramwise_cfg  # the official norm rule
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 32
    assert (cfg.train_cfg.type, cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (
        'ResumableIterBasedTrainLoop', 40000, 4000)
    assert (cfg.default_hooks.checkpoint.interval, cfg.default_hooks.checkpoint.by_epoch) == (4000, False)

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset == upernet[loader].dataset, loader
    assert cfg.test_evaluator == upernet.test_evaluator
    assert (cfg.tta_model, cfg.tta_pipeline) == (upernet.tta_model, upernet.tta_pipeline)


def test_semantic_fpn_lr_schedule():
    """Poly decay (power 0.9) from 2e-4 to 0 over the 40k iterations, no warm-up."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = load(SEMANTIC_FPN)
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    (scheduler, ) = [PARAM_SCHEDULERS.build(scheduler, default_args=dict(optimizer=OptimWrapper(optimizer)))
                     for scheduler in cfg.param_scheduler]
    checked = {0, 1, 20000, 39000, 39999}
    for step in range(40000):
        if step in checked:
            # mmengine's schedulers reach their end value at their last iteration (end - 1).
            expected = 2e-4 * (1 - step / (40000 - 1))**0.9
            assert optimizer.param_groups[0]['lr'] == pytest.approx(expected, rel=1e-6, abs=1e-15), step
        scheduler.step()


def test_semantic_fpn_pyramid_matches_its_head():
    """The VMamba-T Semantic FPN as configured (SyncBN as BN): the FPN takes the backbone's four outputs, its
    levels have the strides the head upsamples from, and the head predicts the 150 classes at stride 4."""
    from mmengine.model import revert_sync_batchnorm

    cfg = load(SEMANTIC_FPN)
    cfg.model.backbone.init_cfg = None  # no download; the architecture is what is tested
    segmentor = revert_sync_batchnorm(build_segmentor(cfg.model)).eval()
    size = 128
    with torch.no_grad():
        features = segmentor.extract_feat(torch.zeros(1, 3, size, size))
        logits = segmentor.decode_head(features)
    width, strides = cfg.model.neck.out_channels, cfg.model.decode_head.feature_strides
    assert [tuple(level.shape[1:]) for level in features] == [(width, size // stride, size // stride)
                                                             for stride in strides]
    assert logits.shape == (1, 150, size // 4, size // 4)
