"""Weight decay of the detection and segmentation configs, parameter by parameter, against the official rule.

The official configs pass ``custom_keys={'norm': dict(decay_mult=0.)}`` to mmengine, which exempts every parameter
whose name holds 'norm' *in the official model*. The expectation here is computed on those official names (through
the checkpoint converter's own name tables), then compared with the optimizer mmengine builds from our configs.
"""
import importlib
import re

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch import nn

import vmamba_mm.registry  # noqa: F401 (registers VMamba)
from shapes_demo_data import REPO
from vmamba_mm.converters import official as converter

TINY_ARCH = dict(dims=16, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1)
TASKS = {
    'detection': ('mmdet', 'detection/mask-rcnn_vmamba-tiny_fpn_1x_coco.py', 0.05),
    'segmentation': ('mmseg', 'segmentation/upernet_vmamba-tiny_8xb2-160k_ade20k-512x512.py', 0.01),
}


def official_name(name):
    """The official model's name of one of our backbone parameters (current design)."""
    match = re.fullmatch(r'stages\.(\d+)\.blocks\.(\d+)\.(.+)', name)
    if match:
        stage, block, rest = match.groups()
        for official, ours in converter._BLOCK_NAMES.items():
            if rest == ours or rest.startswith(ours + '.'):
                return f'layers.{stage}.blocks.{block}.{official}{rest[len(ours):]}'
    match = re.fullmatch(r'stages\.(\d+)\.downsample\.(\w+)\.(weight|bias)', name)
    if match:
        (index, ) = [index for index, ours in converter._DOWNSAMPLE_NAMES['v2'].items() if ours == match[2]]
        return f'layers.{match[1]}.downsample.{index}.{match[3]}'
    match = re.fullmatch(r'patch_embed\.(\w+)\.(weight|bias)', name)
    if match:
        (index, ) = [index for index, ours in converter._STEM_NAMES['v2'].items() if ours == match[1]]
        return f'patch_embed.{index}.{match[2]}'
    if re.fullmatch(r'outnorm\d+\.(weight|bias)', name):
        return name
    raise AssertionError(f'no official name for backbone parameter {name}')


def build(task, extra_config=None, tmp_path=None):
    """The task's tiny model and the optimizer its config builds; ``extra_config`` is a config based on it."""
    scope, name, _ = TASKS[task]
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=True)
    path = REPO / 'configs' / name
    if extra_config is not None:
        child = tmp_path / 'child.py'
        child.write_text(f'_base_ = [{str(path)!r}]\n{extra_config}')
        path = child
    cfg = Config.fromfile(path)
    cfg.model.backbone.update(arch=TINY_ARCH, init_cfg=None)
    dims = [16, 32, 64, 128]
    if task == 'detection':
        cfg.model.neck.in_channels = dims
    else:
        cfg.model.decode_head.in_channels = dims
        cfg.model.auxiliary_head.in_channels = dims[2]
    model = importlib.import_module(f'{scope}.registry').MODELS.build(cfg.model)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay = {id(param): group['weight_decay'] for group in optimizer.param_groups for param in group['params']}
    assert len(decay) == len(list(model.parameters()))
    return model, {name: decay[id(param)] for name, param in model.named_parameters()}


@pytest.mark.parametrize('task', sorted(TASKS))
def test_every_parameter_is_decayed_as_the_official_config_decays_it(task):
    model, decay = build(task)
    base = TASKS[task][2]
    expected = {}
    for name in decay:
        if name.startswith('backbone.'):
            official = official_name(name[len('backbone.'):])
            assert converter._mm_backbone_name(official, 'v2') == name[len('backbone.'):]  # the tables round-trip
        else:
            official = name  # the necks and heads are the same mm modules in both
        expected[name] = 0.0 if 'norm' in official else base
    assert decay == expected
    # What the rule means here: the stem and downsampling LayerNorms are decayed, every other backbone norm is not.
    stem_and_downsample = {name for name in decay
                           if re.match(r'backbone\.(patch_embed\.norm|stages\.\d\.downsample\.norm)', name)}
    assert len(stem_and_downsample) == 2 * 2 + 3 * 2 and all(decay[name] == base for name in stem_and_downsample)
    backbone_norms = {f'backbone.{module_name}.{param}' for module_name, module in model.backbone.named_modules()
                      if isinstance(module, nn.LayerNorm) for param in ('weight', 'bias')}
    assert {name for name, value in decay.items() if value == 0.0} == backbone_norms - stem_and_downsample


@pytest.mark.parametrize('task', sorted(TASKS))
def test_all_norms_no_decay_is_an_opt_in_that_exempts_every_backbone_norm(task, tmp_path):
    extra = 'optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.all_norms_no_decay}}))\n'
    model, decay = build(task, extra, tmp_path)
    base = TASKS[task][2]
    backbone_norms = {f'backbone.{module_name}.{param}' for module_name, module in model.backbone.named_modules()
                      if isinstance(module, nn.LayerNorm) for param in ('weight', 'bias')}
    assert decay == {name: 0.0 if name in backbone_norms else base for name in decay}
