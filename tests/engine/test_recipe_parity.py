"""Recipe parity: the loop ``tools/train.py`` builds from the paper config against the official recipe, step by step.

From the same initial weights (the official model's, converted by the project's converter), on the same batches,
with the stochastic parts off (Mixup/CutMix, drop path; the data have no random transforms), the official training
step (:class:`vmamba_mm.analysis.train_benchmark.OfficialTrainStep`: what the official ``train_one_epoch`` does,
with the optimizer and the schedule built by the official ``build_optimizer`` / ``build_scheduler`` from the official
config) and our Runner give the same loss at each step and the same final and EMA weights, in float32. Only the
model size, the data and the lengths are changed, on both sides alike: a tiny arch, 64² images (the last stage at
2 × 2, where every SSM parameter has a gradient), 10 epochs of 10 steps with 2 warm-up epochs (the paper: 300 and
20), and the EMA's horizon shortened to the run's. The deviations documented in configs/classification/README.md
("Recipe parity") are made equal here, each where it is named: the warm-up's end (:func:`shorten_schedule`), the
official loop's one-step-late learning rate (:class:`OneStepAhead`) and the EMA's first step (its test).

The official side needs ``$VMAMBA_OFFICIAL_SRC`` (a checkout of github.com/MzeroMiko/VMamba), timm and yacs, as its
own code does; without them those tests skip. The parameter-group check at the top runs everywhere.
"""
import contextlib
import importlib.util
import io
import logging
import os
import sys
import types
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import EMAHook, Hook

import vmamba_mm.registry  # noqa: F401 (registers VMamba)
from vmamba_mm.converters import official as converter

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'configs' / 'classification'
PAPER_CONFIG = CONFIGS / 'vmamba-tiny_8xb128-300e_in1k.py'
OFFICIAL_YAML = 'vmambav2v_tiny_224.yaml'  # the official config of VMamba-T, the paper config's model
TINY_ARCH = dict(dims=16, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1)
TINY_VANILLA_ARCH = dict(TINY_ARCH, vanilla=True)
NUM_CLASSES, IMAGE_SIZE, BATCH_SIZE = 10, 64, 4
EPOCHS, WARMUP_EPOCHS, STEPS_PER_EPOCH = 10, 2, 10
STEPS = EPOCHS * STEPS_PER_EPOCH
# The paper's EMA (decay 0.9999) averages over ~1e4 steps; over 100 steps it would stay at the initial weights to
# within what float32 can tell apart. Both sides average over the run's length instead.
EMA_MOMENTUM = 1e-2
RTOL = 1e-4


# The official rule, CI-runnable: which parameters get no weight decay.


def _inverse(table):
    return {mine: official for official, mine in table.items()}


def official_name(name, design):
    """The official classifier's name of one of our ImageClassifier parameters (design 'v2' or vanilla 'v0')."""
    parts = name.split('.')
    if parts[0] == 'head':  # head.fc.{weight,bias}
        return f'classifier.head.{parts[-1]}'
    assert parts[0] == 'backbone', name
    rest = '.'.join(parts[1:])
    if parts[1] == 'stages' and parts[3] == 'blocks':
        inner = '.'.join(parts[5:])
        for mine, official in _inverse(converter._BLOCK_NAMES).items():
            if inner == mine or inner.startswith(mine + '.'):
                return f'layers.{parts[2]}.blocks.{parts[4]}.{official}{inner[len(mine):]}'
    if parts[1] == 'stages' and parts[3] == 'downsample':
        return f'layers.{parts[2]}.downsample.{_inverse(converter._DOWNSAMPLE_NAMES[design])[parts[4]]}.{parts[5]}'
    if parts[1] == 'patch_embed':
        return f'patch_embed.{_inverse(converter._STEM_NAMES[design])[parts[2]]}.{parts[3]}'
    if parts[1].startswith('outnorm'):  # the last stage's norm is the official classifier.norm
        return f'classifier.norm.{parts[2]}'
    raise AssertionError(f'no official name for {rest}')


def _build_classifier(cfg):
    from mmpretrain.registry import MODELS

    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('config, arch', [('vmamba-tiny_8xb128-300e_in1k.py', TINY_ARCH),
                                          ('vmamba-vanilla-tiny_8xb128-300e_in1k.py', TINY_VANILLA_ARCH)])
def test_weight_decay_groups_follow_the_official_rule_on_official_names(config, arch):
    """The official ``set_weight_decay``: no decay for a parameter that is 1-D, whose official name ends in
    ``.bias`` or is in the model's ``no_weight_decay()`` ({'pos_embed'}, which VMamba classifiers do not have);
    everything else decays with the optimizer's 0.05. Checked on the official names (through the converter's own
    tables, and back through the converter), so a parameter we name differently cannot slip through: e.g. the
    2-D ``dt_projs_bias`` decays, its name not ending in ``.bias``."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.backbone.arch = arch
    cfg.model.head.in_channels = arch['dims'] * 8
    model = _build_classifier(cfg)
    optim_wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='OptimWrapper'))
    decay_of = {id(parameter): group['weight_decay'] for group in optim_wrapper.optimizer.param_groups
                for parameter in group['params']}
    parameters = dict(model.named_parameters())
    assert len(decay_of) == len(parameters)

    design = 'v0' if arch.get('vanilla') else 'v2'
    names = {name: official_name(name, design) for name in parameters}
    # The converter takes the official names back to ours: the names above are the official model's.
    converted = converter.official_to_mm({official: parameters[name] for name, official in names.items()})
    assert {key: value.data_ptr() for key, value in converted.items()} == {
        name: parameter.data_ptr() for name, parameter in parameters.items()}

    expected = {name: 0.0 if parameters[name].ndim == 1 or official.endswith('.bias') or official == 'pos_embed'
                else cfg.optim_wrapper.optimizer.weight_decay for name, official in names.items()}
    assert {name: decay_of[id(parameter)] for name, parameter in parameters.items()} == expected
    assert any(name.endswith('dt_proj_bias') for name, decay in expected.items() if decay)  # 2-D: it decays


# The trajectories (official checkout needed).


def _official_classification_dir():
    source = os.environ.get('VMAMBA_OFFICIAL_SRC')
    if not source:
        pytest.skip('set VMAMBA_OFFICIAL_SRC to a checkout of the official VMamba repo')
    directory = Path(source) / 'classification'
    if not (directory / 'models' / 'vmamba.py').is_file():
        pytest.skip(f'VMAMBA_OFFICIAL_SRC={source} has no classification/models/vmamba.py')
    pytest.importorskip('timm', reason='the official recipe uses timm (scheduler, ModelEma, losses)')
    pytest.importorskip('yacs', reason='the official config is a yacs CfgNode')
    return directory


def _import_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _official_utils(directory):
    """The official ``utils`` folder as a package of its own name (its lr_scheduler imports a sibling)."""
    package = types.ModuleType('vmamba_official_utils')
    package.__path__ = [str(directory / 'utils')]
    sys.modules['vmamba_official_utils'] = package
    try:
        return (_import_file('vmamba_official_utils.optimizer', directory / 'utils' / 'optimizer.py'),
                importlib.import_module('vmamba_official_utils.lr_scheduler'))
    finally:
        for name in [name for name in sys.modules if name.startswith('vmamba_official_utils')]:
            del sys.modules[name]


def official_config(directory):
    """The official config of VMamba-T as ``main.py`` makes it, with this test's model size, data and lengths."""
    module = _import_file('vmamba_official_config', directory / 'config.py')
    config = module._C.clone()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints each file it merges
        module._update_config_from_file(config, str(directory / 'configs' / 'vssm' / OFFICIAL_YAML))
    config.defrost()
    config.merge_from_list([
        'MODEL.NUM_CLASSES', NUM_CLASSES, 'MODEL.DROP_PATH_RATE', 0.0, 'DATA.IMG_SIZE', IMAGE_SIZE,
        'TRAIN.EPOCHS', EPOCHS, 'TRAIN.WARMUP_EPOCHS', WARMUP_EPOCHS, 'AUG.MIXUP', 0.0, 'AUG.CUTMIX', 0.0,
        'AMP_ENABLE', False])
    # main.py's linear rule, at the recipe's batch of 8 GPUs x 128 (the batches here are smaller; the paper
    # config's learning rate is set for 8 x 128 likewise).
    for key in ('BASE_LR', 'WARMUP_LR', 'MIN_LR'):
        config.TRAIN[key] = config.TRAIN[key] * config.DATA.BATCH_SIZE * 8 / 512.0
    config.freeze()
    return config


class RecordBatches(Hook):
    """Keeps what each training step saw: the batch, the learning rate and the loss."""

    priority = 'VERY_LOW'

    def __init__(self):
        self.batches, self.lrs, self.losses = [], [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches.append((torch.stack(data_batch['inputs']).clone(),
                             torch.tensor([int(sample.gt_label) for sample in data_batch['data_samples']])))
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs['loss'].item())


def shorten_schedule(cfg):
    """The paper's 20 warm-up and 300 epochs as this run's; the warm-up written in iterations, reaching the peak at
    the first step after it as the official one does (the opt-out documented in configs/classification/README.md;
    the config's epoch-based LinearLR reaches it one step earlier)."""
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ('LinearLR', 0, 20)
    assert (cosine.type, cosine.begin, cosine.end) == ('CosineAnnealingLR', 20, cfg.train_cfg.max_epochs)
    warmup.update(by_epoch=False, convert_to_iter_based=False, begin=0, end=WARMUP_EPOCHS * STEPS_PER_EPOCH + 1)
    cosine.update(begin=WARMUP_EPOCHS, end=EPOCHS)
    cfg.train_cfg.max_epochs = EPOCHS


CHILD_CONFIG = f'''
_base_ = [{str(PAPER_CONFIG)!r}]
model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH!r}), drop_path_rate=0.0),
             head=dict(num_classes={NUM_CLASSES}, in_channels={TINY_ARCH['dims'] * 8}),
             train_cfg=None)  # no Mixup/CutMix
data_preprocessor = dict(num_classes={NUM_CLASSES})
train_dataloader = dict(
    batch_size={BATCH_SIZE}, num_workers=0, persistent_workers=False, pin_memory=False,
    dataset=dict(_delete_=True, type='SyntheticImageNet', num_samples={STEPS_PER_EPOCH * BATCH_SIZE},
                 image_size={IMAGE_SIZE}, num_classes={NUM_CLASSES}, pipeline=[dict(type='PackInputs')]))
train_cfg = dict(val_interval={EPOCHS + 1})
val_dataloader = val_cfg = val_evaluator = test_dataloader = test_cfg = test_evaluator = None
custom_hooks = [dict(type='EMAHook', momentum={EMA_MOMENTUM}, update_buffers=True, evaluate_on_ema=True,
                     evaluate_on_origin=True, priority='ABOVE_NORMAL')]
optim_wrapper = dict(type='OptimWrapper')  # float32 on both sides
default_hooks = dict(checkpoint=dict(interval=-1, save_last=False), logger=dict(interval={STEPS}))
'''


def run_ours(work_dir, initial_checkpoint):
    """tools/train.py's config and Runner for the paper config with this test's overrides, trained."""
    train = _import_file('vmamba_mm_recipe_parity_train', REPO / 'tools' / 'train.py')
    child = work_dir / 'parity_config.py'
    child.write_text(CHILD_CONFIG + f'load_from = {str(initial_checkpoint)!r}\n')
    cfg = train.build_config(train.parse_args([str(child), '--work-dir', str(work_dir / 'run')]))
    paper = Config.fromfile(PAPER_CONFIG)
    (ema, ) = cfg.custom_hooks
    (paper_ema, ) = paper.custom_hooks
    assert dict(ema, momentum=paper_ema.momentum) == paper_ema  # only the EMA's horizon differs
    for key in ('optimizer', 'paramwise_cfg', 'clip_grad'):
        assert cfg.optim_wrapper[key] == paper.optim_wrapper[key]
    shorten_schedule(cfg)

    from vmamba_mm import launch

    runner = launch.build_runner(cfg)
    recorder = RecordBatches()
    runner.register_hook(recorder)
    runner.train()
    (ema_hook, ) = [hook for hook in runner.hooks if isinstance(hook, EMAHook)]
    return dict(losses=recorder.losses, lrs=recorder.lrs, batches=recorder.batches,
                weights={key: value.detach().clone() for key, value in runner.model.state_dict().items()},
                ema={key: value.detach().clone() for key, value in ema_hook.ema_model.module.state_dict().items()})


def official_batch(inputs, labels):
    """Our packed BGR uint8 batch as the official loader hands it over: RGB, ToTensor, Normalize."""
    from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1)
    return (inputs.flip(1).float() / 255 - mean) / std, labels


class OneStepAhead:
    """The official schedule with each step at its own value, as ours (a documented deviation): the official loop
    calls ``step_update(i)`` after step i, which sets step i + 1 to the value of step i (steps 0 and 1 both run at the
    warm-up start); here it sets the value of step i + 1."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def step_update(self, index):
        self.scheduler.step_update(index + 1)


def run_official(directory, source, model, batches):
    """The official recipe on ``batches``: main.py's EMA, optimizer, scheduler and criterion, its step."""
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    from timm.utils import ModelEma

    from vmamba_mm.analysis.train_benchmark import OfficialTrainStep

    config = official_config(directory)
    optimizer_module, scheduler_module = _official_utils(directory)
    model_ema = ModelEma(model, decay=1 - EMA_MOMENTUM, device='', resume='')  # before the optimizer, as main.py
    optimizer = optimizer_module.build_optimizer(config, model, logging.getLogger('vmamba_official'))
    lr_scheduler = scheduler_module.build_scheduler(config, optimizer, STEPS_PER_EPOCH)
    if config.AUG.MIXUP > 0:
        criterion = SoftTargetCrossEntropy()
    elif config.MODEL.LABEL_SMOOTHING > 0:
        criterion = LabelSmoothingCrossEntropy(smoothing=config.MODEL.LABEL_SMOOTHING)
    else:
        criterion = torch.nn.CrossEntropyLoss()
    step = OfficialTrainStep(model, criterion, optimizer, OneStepAhead(lr_scheduler),
                             torch.amp.GradScaler('cpu', enabled=False),
                             clip_grad=config.TRAIN.CLIP_GRAD, model_ema=model_ema)
    losses, lrs = [], []
    after_first_step = None
    model.train()
    optimizer.zero_grad()
    with source.cpu_device_context():
        for index, (inputs, labels) in enumerate(batches):
            lrs.append(optimizer.param_groups[0]['lr'])
            losses.append(step(index, *official_batch(inputs, labels))[0])
            if index == 0:
                after_first_step = {key: value.detach().clone() for key, value in model.state_dict().items()}
    return dict(config=config, losses=losses, lrs=lrs, weights=model.state_dict(), ema=model_ema.ema.state_dict(),
                after_first_step=after_first_step)


def _to_mm(state_dict):
    return converter.official_to_mm({'model': state_dict})


def relative_difference(ours, theirs):
    """Per tensor ||ours - theirs|| / ||theirs||, the largest over the state dict (same keys on both sides)."""
    assert ours.keys() == theirs.keys()
    return max(((ours[key].double() - theirs[key].double()).norm() / theirs[key].double().norm().clamp_min(1e-30))
               .item() for key in theirs)


@pytest.fixture(scope='module')
def trajectories(tmp_path_factory):
    directory = _official_classification_dir()
    sys.path.insert(0, str(REPO / 'tests' / 'models'))
    try:
        import official_source
    finally:
        sys.path.pop(0)
    from vmamba_mm.analysis.train_benchmark import official_backbone_kwargs

    work_dir = tmp_path_factory.mktemp('recipe_parity')
    module = official_source.import_official_vmamba(directory / 'models')
    torch.manual_seed(0)
    model = module.VSSM(num_classes=NUM_CLASSES, **official_backbone_kwargs(TINY_ARCH, drop_path_rate=0.0))
    initial = {key: value.detach().clone() for key, value in model.state_dict().items()}
    checkpoint = work_dir / 'official_initial.pth'
    torch.save({'model': initial}, checkpoint)

    ours = run_ours(work_dir, checkpoint)
    official = run_official(directory, official_source, model, ours['batches'])
    return dict(ours=ours, official=official, initial=_to_mm(initial),
                after_first_step=_to_mm(official['after_first_step']))


@pytest.mark.slow
def test_learning_rates_are_the_official_ones_at_every_step(trajectories):
    ours, official = trajectories['ours'], trajectories['official']
    assert len(ours['lrs']) == len(official['lrs']) == STEPS
    config = official['config'].TRAIN
    assert official['lrs'][0] == pytest.approx(config.WARMUP_LR)
    assert max(official['lrs']) == pytest.approx(config.BASE_LR)  # warm-up and cosine both within the run
    assert official['lrs'][-1] < 0.1 * config.BASE_LR
    assert ours['lrs'] == pytest.approx(official['lrs'], rel=1e-6)


@pytest.mark.slow
def test_losses_are_the_official_ones_at_every_step(trajectories):
    ours, official = trajectories['ours']['losses'], trajectories['official']['losses']
    assert len(ours) == len(official) == STEPS
    differences = [abs(a - b) / abs(b) for a, b in zip(ours, official)]
    print(f'\nrecipe parity: {STEPS} steps, loss {official[0]:.4f} -> {official[-1]:.4f}, largest relative loss '
          f'difference {max(differences):.2e} (step {differences.index(max(differences))})')
    assert official[-1] < official[0]  # it learns: the comparison is not between two idle runs
    assert max(differences) <= RTOL


@pytest.mark.slow
def test_final_weights_are_the_official_ones(trajectories):
    ours = trajectories['ours']['weights']
    official = _to_mm(trajectories['official']['weights'])
    initial = trajectories['initial']
    moved = {key: official[key] - initial[key] for key in official}
    weights, steps = relative_difference(ours, official), relative_difference(
        {key: ours[key] - initial[key] for key in ours}, moved)
    print(f'\nrecipe parity: final weights, largest relative difference {weights:.2e}; of the change from the '
          f'initial weights {steps:.2e}')
    assert not [key for key, value in moved.items() if value.norm() == 0]  # every parameter trained
    assert weights <= RTOL and steps <= 10 * RTOL


@pytest.mark.slow
def test_ema_weights_are_the_official_ones_but_for_the_documented_first_step(trajectories):
    """mmengine's EMA starts from the weights after the first step, timm's (the official) from the initial
    weights: ours = official + decay^steps x (first step's change), exactly."""
    ours = trajectories['ours']['ema']
    official = _to_mm(trajectories['official']['ema'])
    initial, first = trajectories['initial'], trajectories['after_first_step']
    decay = (1 - EMA_MOMENTUM) ** STEPS
    expected = {key: official[key] + decay * (first[key] - initial[key]) for key in official}
    corrected, uncorrected = relative_difference(ours, expected), relative_difference(ours, official)
    print(f'\nrecipe parity: EMA weights, largest relative difference {corrected:.2e} with the first-step term '
          f'({uncorrected:.2e} without)')
    assert corrected <= RTOL
