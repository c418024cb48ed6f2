"""The ImageNet classification configs: the official VMamba recipe, and every model builds and trains a step."""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import vmamba_mm.registry  # noqa: F401 (registers VMamba)

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'classification'

# config -> (backbone arch, drop path rate, head input channels), from the official yaml files
# vmambav2v_tiny / vmambav2_small / vmambav2_base / vmambav0_{tiny,small,base}_224.
MODELS = {
    'vmamba-tiny_8xb128-300e_in1k.py': ('tiny', 0.2, 768),
    'vmamba-small_8xb128-300e_in1k.py': ('small', 0.3, 768),
    'vmamba-base_8xb128-300e_in1k.py': ('base', 0.6, 1024),
    'vmamba-vanilla-tiny_8xb128-300e_in1k.py': ('vanilla-tiny', 0.2, 768),
    'vmamba-vanilla-small_8xb128-300e_in1k.py': ('vanilla-small', 0.3, 768),
    'vmamba-vanilla-base_8xb128-300e_in1k.py': ('vanilla-base', 0.5, 1024),
}
CHEAP = {'vmamba-tiny_8xb128-300e_in1k.py'}
# The vanilla design scans with d_state 16, which the CPU's torch reference materialises per state: a 224² step
# of a vanilla model takes many minutes on a CPU, mostly allocating memory. They step at lower resolution; the
# models of the current design (the paper's T/S/B) step at 224².
STEP_SIZE = {
    'vmamba-vanilla-tiny_8xb128-300e_in1k.py': 112,
    'vmamba-vanilla-small_8xb128-300e_in1k.py': 64,
    'vmamba-vanilla-base_8xb128-300e_in1k.py': 64,
}
TINY_ARCH = dict(dims=16, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)


def _load(name):
    from mmpretrain.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return Config.fromfile(CONFIGS / name)


def _build_model(cfg):
    """The classifier as mmengine's Runner builds it (the top-level data_preprocessor goes into the model)."""
    from mmpretrain.registry import MODELS as REGISTRY

    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = REGISTRY.build(model_cfg)
    model.init_weights()
    return model


def _pipeline_step(pipeline, type_name):
    (step, ) = [step for step in pipeline if step['type'] == type_name]
    return step


@pytest.mark.parametrize('name', sorted(MODELS))
def test_recipe_is_the_official_one(name):
    cfg = _load(name)
    arch, drop_path_rate, channels = MODELS[name]
    assert cfg.default_scope == 'mmpretrain'
    assert (cfg.model.backbone.arch, cfg.model.backbone.drop_path_rate) == (arch, drop_path_rate)
    assert (cfg.model.head.num_classes, cfg.model.head.in_channels) == (1000, channels)
    assert cfg.model.head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')
    assert cfg.model.train_cfg.augments == [dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]

    # AdamW at 5e-4 per 512 images, total batch 8 x 128, clipping 5, float16 AMP on GPUs.
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 1024
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.05, eps=1e-8,
                                               betas=(0.9, 0.999), fused=True)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=5.0)
    assert cfg.train_cfg.max_epochs == 300 and cfg.train_dataloader.drop_last
    assert cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop'  # mmengine's epoch loop + exact mid-epoch resume

    ema_hooks = [hook for hook in cfg.custom_hooks if hook['type'] == 'EMAHook']
    if name.startswith('vmamba-vanilla-tiny'):
        assert not ema_hooks  # the one official model trained without EMA
    else:
        (ema, ) = ema_hooks
        assert (ema.momentum, ema.evaluate_on_ema, ema.evaluate_on_origin) == (1e-4, True, True)

    train, test = cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline
    crop = _pipeline_step(train, 'RandomResizedCrop')
    assert (crop.scale, crop.interpolation) == (224, 'bicubic')
    assert _pipeline_step(train, 'RandomFlip').prob == 0.5
    rand_augment = _pipeline_step(train, 'RandAugment')  # rand-m9-mstd0.5-inc1
    assert (rand_augment.policies, rand_augment.num_policies, rand_augment.magnitude_level,
            rand_augment.magnitude_std, rand_augment.total_level) == ('timm_increasing', 2, 9, 0.5, 10)
    erasing = _pipeline_step(train, 'RandomErasing')
    assert (erasing.erase_prob, erasing.mode, erasing.max_area_ratio) == (0.25, 'rand', 1 / 3)
    resize = _pipeline_step(test, 'ResizeEdge')
    assert (resize.scale, resize.edge, resize.interpolation) == (256, 'short', 'bicubic')
    assert _pipeline_step(test, 'CenterCrop').crop_size == 224


@pytest.mark.parametrize('name', ['vmamba-tiny_8xb128-300e_in1k.py', 'vmamba-vanilla-tiny_8xb128-300e_in1k.py'])
def test_weight_decay_exempts_what_the_official_optimizer_exempts(name):
    """Official rule: no decay for 1-D parameters and for names ending in `.bias`; 0.05 for the rest."""
    from mmengine.optim import build_optim_wrapper

    cfg = _load(name)
    cfg.model.backbone.arch = dict(TINY_ARCH, vanilla=name.startswith('vmamba-vanilla'))
    cfg.model.head.in_channels = 128
    model = _build_model(cfg)
    optim_wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='OptimWrapper'))
    decay = {id(param): group['weight_decay'] for group in optim_wrapper.optimizer.param_groups
             for param in group['params']}
    names = dict(model.named_parameters())
    assert len(decay) == len(names)
    wrong = {name: decay[id(param)] for name, param in names.items()
             if decay[id(param)] != (0.0 if param.ndim == 1 or name.endswith('.bias') else 0.05)}
    assert not wrong
    assert {0.0, 0.05} == set(decay.values())


@pytest.mark.filterwarnings('ignore:Detected call of `scheduler.step\\(\\)` before `optimizer.step\\(\\)`')
def test_lr_schedule_matches_the_official_formula():
    """Linear warm-up from 5e-7 x 2 over 20 epochs, then per-iteration cosine to 5e-6 x 2 at epoch 300."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = _load('vmamba-tiny_8xb128-300e_in1k.py')
    epoch_length, epochs, warmup_epochs = 3, cfg.train_cfg.max_epochs, 20
    base_lr, warmup_lr, min_lr = 1e-3, 5e-7 * 2, 5e-6 * 2
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(scheduler, default_args=dict(optimizer=OptimWrapper(optimizer),
                                                                       epoch_length=epoch_length))
                  for scheduler in cfg.param_scheduler]

    warmup_steps, total_steps = warmup_epochs * epoch_length, epochs * epoch_length
    for step in range(total_steps):
        lr = optimizer.param_groups[0]['lr']
        if step < warmup_steps:
            # Official: warmup_lr + step x increment, reaching base_lr at step `warmup_steps`; mmengine's
            # LinearLR reaches it one step earlier.
            increment = (base_lr - warmup_lr) / warmup_steps
            assert abs(lr - (warmup_lr + step * increment)) <= increment * (1 + 1e-6), step
        else:
            progress = (step - warmup_steps) / (total_steps - warmup_steps)
            assert lr == pytest.approx(min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress)),
                                       rel=1e-6), step
        for scheduler in schedulers:
            scheduler.step()
    assert optimizer.param_groups[0]['lr'] == pytest.approx(min_lr, rel=1e-3)


def _train_step(model, image_size=224):
    from mmpretrain.structures import DataSample

    torch.manual_seed(0)
    images = [torch.randint(0, 256, (3, image_size, image_size), dtype=torch.uint8) for _ in range(2)]
    samples = [DataSample().set_gt_label(label) for label in (3, 7)]
    model.train()
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    loss = sum(losses.values())
    loss.backward()
    return loss


@pytest.mark.parametrize('name', [
    pytest.param(name, marks=() if name in CHEAP else pytest.mark.slow) for name in sorted(MODELS)])
def test_config_builds_and_trains_one_step(name):
    cfg = _load(name)
    model = _build_model(cfg)
    loss = _train_step(model, STEP_SIZE.get(name, 224))
    assert torch.isfinite(loss)
    # Mixup/CutMix targets with label smoothing: the loss of an untrained model sits near ln(1000).
    assert 0.5 * math.log(1000) < loss.item() < 2 * math.log(1000)
    missing = [name for name, param in model.named_parameters() if param.grad is None]
    assert not missing
    assert all(torch.isfinite(param.grad).all() for param in model.parameters())
    assert model.head.fc.weight.grad.abs().sum() > 0 and model.backbone.patch_embed[0].weight.grad.abs().sum() > 0
