"""The vanilla Mask R-CNN and UperNet configs against the official vanilla ones (``detection/configs/vssm/*``,
``segmentation/configs/vssm/*_512x512_*``): the backbone as those files give it, everything else the recipe of the
current-design configs (whose own tests hold it to the official recipe), since both official folders build on
the same Swin configs and differ in the backbone only."""
import copy
import functools
import importlib

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

import vmamba_mm.registry  # noqa: F401 (registers VMamba)
from shapes_demo_data import REPO, load_module
from vmamba_mm.converters import IncompatibleCheckpointError
from vmamba_mm.loading import load_weights
from vmamba_mm.models import VMamba

official_layout = load_module(REPO / 'tests' / 'converters' / 'official_layout.py')

# The official vanilla backbones (MM_VSSM with patch-embed and downsample 'v1', mlp_ratio 0, ssm_d_state 16,
# ssm_ratio 2.0): size -> (dims, depths).
OFFICIAL_BACKBONES = {'tiny': (96, (2, 2, 9, 2)), 'small': (96, (2, 2, 27, 2)), 'base': (128, (2, 2, 27, 2))}
# The official files set no drop path rate: MM_VSSM takes the one of the Swin config they are based on.
DROP_PATH = {'det': 0.2, 'seg': 0.3}
# The released vanilla classifiers the backbones start from (the official base config names an unreleased file).
PRETRAINED = {
    'tiny': 'vssmtiny_dp01_ckpt_epoch_292.pth',
    'small': 'vssmsmall_dp03_ckpt_epoch_238.pth',
    'base': 'vssmbase_dp06_ckpt_epoch_241.pth',
}
V0CLS = 'https://github.com/MzeroMiko/VMamba/releases/download/%23v0cls/'
# Parameters in millions as the official performance table rounds them.
PARAMS = {'det': {'tiny': 42, 'small': 64, 'base': 96}, 'seg': {'tiny': 55, 'small': 76, 'base': 110}}
SCOPES = {'det': 'mmdet', 'seg': 'mmseg'}


def config_name(task, size, schedule, design):
    arch = f'vanilla-{size}' if design == 'vanilla' else size
    if task == 'det':
        return f'detection/mask-rcnn_vmamba-{arch}_fpn_{schedule}_coco.py'
    return f'segmentation/upernet_vmamba-{arch}_8xb2-160k_ade20k-512x512.py'


# The official vanilla configs: Mask R-CNN 1x for T/S/B, 3x + MS for T/S, UperNet for T/S/B.
VANILLA = [('det', size, '1x') for size in OFFICIAL_BACKBONES] + [('det', size, 'ms-3x') for size in ('tiny', 'small')]
VANILLA += [('seg', size, '160k') for size in OFFICIAL_BACKBONES]


@functools.lru_cache(maxsize=None)
def _parsed(task, name):
    importlib.import_module(f'{SCOPES[task]}.utils').register_all_modules(init_default_scope=True)
    return Config.fromfile(REPO / 'configs' / name)


def load(task, name):
    """The config, parsed once per session (parsing an mm config is the slow part of these tests)."""
    importlib.import_module(f'{SCOPES[task]}.utils').register_all_modules(init_default_scope=True)
    return copy.deepcopy(_parsed(task, name))


def widths(task, model_cfg):
    if task == 'det':
        return model_cfg.neck.in_channels
    return model_cfg.decode_head.in_channels + [model_cfg.auxiliary_head.in_channels]


@pytest.mark.parametrize('task, size, schedule', VANILLA)
def test_backbone_is_the_official_vanilla_one(task, size, schedule):
    cfg = load(task, config_name(task, size, schedule, 'vanilla'))
    backbone = cfg.model.backbone
    dims, depths = OFFICIAL_BACKBONES[size]
    assert (backbone.type, backbone.arch, backbone.out_indices, backbone.drop_path_rate) == (
        'VMamba', f'vanilla-{size}', (0, 1, 2, 3), DROP_PATH[task])
    assert VMamba.arch_zoo[backbone.arch] == dict(dims=dims, depths=depths, ssm_ratio=2.0, d_state=16, vanilla=True)
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=V0CLS + PRETRAINED[size])
    stage_dims = [dims * 2**i for i in range(4)]
    assert widths(task, cfg.model) == (stage_dims if task == 'det' else stage_dims + [stage_dims[2]])
    # The official weight decay rule on the vanilla names (checked parameter by parameter below).
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
        'norm': dict(decay_mult=0.), 'patch_embed.norm': dict(decay_mult=1.), 'downsample.norm': dict(decay_mult=0.)}


@pytest.mark.parametrize('task, size, schedule', VANILLA)
def test_everything_else_is_the_recipe_of_the_current_design(task, size, schedule):
    vanilla = load(task, config_name(task, size, schedule, 'vanilla')).to_dict()
    current = load(task, config_name(task, size, schedule, 'current')).to_dict()
    for cfg in (vanilla, current):
        del cfg['model']['backbone'], cfg['optim_wrapper']['paramwise_cfg']
        for head in ('neck', 'decode_head', 'auxiliary_head'):
            cfg['model'].get(head, {}).pop('in_channels', None)
    assert vanilla == current


@pytest.mark.parametrize('task', sorted(PARAMS))
def test_models_have_the_published_sizes(task):
    for size, millions in PARAMS[task].items():
        model_cfg = load(task, config_name(task, size, '1x', 'vanilla')).model
        model_cfg.backbone.init_cfg = None
        with torch.device('meta'):  # sizes only: no memory, no initialisation
            model = importlib.import_module(f'{SCOPES[task]}.registry').MODELS.build(model_cfg)
        assert round(sum(param.numel() for param in model.parameters()) / 1e6) == millions, size


def tiny_model(task):
    """The vanilla-T config with a few-thousand-parameter vanilla backbone, and the model it builds."""
    cfg = load(task, config_name(task, 'tiny', '1x', 'vanilla'))
    cfg.model.backbone.update(arch=dict(dims=16, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=1, vanilla=True),
                              init_cfg=None)
    if task == 'det':
        cfg.model.neck.in_channels = [16, 32, 64, 128]
    else:
        cfg.model.decode_head.in_channels, cfg.model.auxiliary_head.in_channels = [16, 32, 64, 128], 64
    return cfg, importlib.import_module(f'{SCOPES[task]}.registry').MODELS.build(cfg.model)


@pytest.mark.parametrize('task', sorted(PARAMS))
def test_official_vanilla_checkpoint_loads_into_the_whole_model(task, tmp_path):
    """An official vanilla detector / segmentor checkpoint (first-release backbone names under ``backbone.``,
    every outnorm, neck and heads) loads strictly into the config's model, as tools/test.py loads it."""
    _, model = tiny_model(task)
    weights = {key: torch.randn_like(value) if value.is_floating_point() else value
               for key, value in model.state_dict().items()}
    backbone = {key: value for key, value in weights.items() if key.startswith('backbone.')}
    official = official_layout.to_official(backbone, legacy=True, prefix='backbone.', keep_outnorms=True)
    official.update({key: value for key, value in weights.items() if key not in backbone})
    assert 'backbone.layers.0.blocks.0.self_attention.Ds' in official
    torch.save({'meta': {'epoch': 12}, 'state_dict': official}, tmp_path / 'official.pth')
    load_weights(model, str(tmp_path / 'official.pth'), task=task)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in weights.items())
    del official['backbone.outnorm1.weight']
    torch.save({'state_dict': official}, tmp_path / 'partial.pth')
    with pytest.raises(IncompatibleCheckpointError, match='backbone.outnorm1.weight'):
        load_weights(model, str(tmp_path / 'partial.pth'), task=task)


@pytest.mark.parametrize('task', sorted(PARAMS))
def test_every_parameter_is_decayed_as_the_official_vanilla_config_decays_it(task):
    """Expected: decay 0 exactly where the official model's parameter name holds 'norm' (the official names are
    written by the converter tests' independent statement of the official layout)."""
    cfg, model = tiny_model(task)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay = {id(param): group['weight_decay'] for group in optimizer.param_groups for param in group['params']}
    backbone = dict(model.backbone.named_parameters())
    official = dict(zip(backbone, official_layout.to_official(backbone, keep_outnorms=True)))
    assert {'patch_embed.2.weight', 'layers.0.downsample.norm.weight', 'layers.0.blocks.0.norm.weight',
            'layers.0.blocks.0.op.out_norm.weight', 'outnorm3.weight'} <= set(official.values())
    base = cfg.optim_wrapper.optimizer.weight_decay
    for name, param in model.named_parameters():
        official_name = official[name[len('backbone.'):]] if name.startswith('backbone.') else name
        assert decay[id(param)] == (0.0 if 'norm' in official_name else base), name
