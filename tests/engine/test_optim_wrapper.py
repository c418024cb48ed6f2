"""MergedGroupsOptimWrapperConstructor: mmengine's per-parameter settings in a few parameter groups."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import vmamba_mm  # noqa: F401
from vmamba_mm.engine import MergedGroupsOptimWrapperConstructor, merge_param_groups

TINY = dict(depths=(1, 1, 2, 1), dims=16, d_state=1, ssm_ratio=1.0)


def test_merge_keeps_each_parameter_setting_and_first_appearance_order():
    a, b, c = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    groups = [dict(params=[a], lr=1.0, weight_decay=0.0), dict(params=[b], lr=1.0, weight_decay=0.05),
              dict(params=[c], lr=1.0, weight_decay=0.0)]
    merged = merge_param_groups(groups)
    assert [group['weight_decay'] for group in merged] == [0.0, 0.05]
    assert merged[0]['params'] == [a, c] and merged[1]['params'] == [b]


def _settings_per_parameter(optimizer):
    return {id(param): {key: value for key, value in group.items() if key != 'params'}
            for group in optimizer.param_groups for param in group['params']}


@pytest.mark.parametrize('config', ['configs/classification/vmamba-tiny_8xb128-300e_in1k.py',
                                    'configs/segmentation/upernet_vmamba-tiny_8xb2-160k_ade20k-512x512.py'])
def test_the_shipped_schedules_give_every_parameter_mmengines_setting_in_few_groups(config):
    cfg = Config.fromfile(config)
    assert cfg.optim_wrapper.constructor == 'MergedGroupsOptimWrapperConstructor'
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import MODELS as SEG_MODELS
        cfg.model.backbone.update(arch=TINY, init_cfg=None)
        with DefaultScope.overwrite_default_scope('mmseg'):
            model = SEG_MODELS.build(_tiny_upernet(cfg.model))
    else:
        cfg.model.backbone.arch = TINY
        cfg.model.head.in_channels = 128
        model = _build_classifier(cfg.model)
    # The plain wrapper: AmpOptimWrapper needs a GPU, and the grouping does not depend on the wrapper.
    wrapper_cfg = dict(type='OptimWrapper', optimizer=dict(cfg.optim_wrapper.optimizer))
    paramwise = cfg.optim_wrapper.paramwise_cfg
    reference = DefaultOptimWrapperConstructor(copy.deepcopy(wrapper_cfg), paramwise)(model)
    merged = MergedGroupsOptimWrapperConstructor(copy.deepcopy(wrapper_cfg), paramwise)(model)

    assert len(reference.optimizer.param_groups) == len(list(model.parameters()))  # mmengine: one per parameter
    assert len(merged.optimizer.param_groups) <= 4
    assert _settings_per_parameter(merged.optimizer) == _settings_per_parameter(reference.optimizer)
    decays = {group['weight_decay'] for group in merged.optimizer.param_groups}
    assert len(decays) == 2 and 0.0 in decays  # the no-decay rule survived the merge


def _build_classifier(model_cfg):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


def _tiny_upernet(model_cfg):
    model_cfg.decode_head.update(in_channels=[16, 32, 64, 128], channels=16)
    model_cfg.auxiliary_head.update(in_channels=64, channels=16)
    model_cfg.data_preprocessor.size = (64, 64)
    return model_cfg


def test_a_step_over_merged_groups_equals_the_step_over_one_group_per_parameter():
    cfg = Config.fromfile('configs/classification/vmamba-tiny_8xb128-300e_in1k.py')
    cfg.model.backbone.update(arch=TINY, drop_path_rate=0.0)  # the two models must compute the same losses
    cfg.model.head.in_channels = 128
    torch.manual_seed(0)
    model = _build_classifier(cfg.model)
    twin = copy.deepcopy(model)
    wrapper_cfg = dict(type='OptimWrapper', optimizer=dict(cfg.optim_wrapper.optimizer), clip_grad=dict(max_norm=5.0))
    paramwise = cfg.optim_wrapper.paramwise_cfg
    wrappers = [DefaultOptimWrapperConstructor(copy.deepcopy(wrapper_cfg), paramwise)(model),
                MergedGroupsOptimWrapperConstructor(copy.deepcopy(wrapper_cfg), paramwise)(twin)]
    images = torch.randn(2, 3, 64, 64)
    for _ in range(2):
        for net, wrapper in zip((model, twin), wrappers):
            wrapper.update_params(net.extract_feat(images)[-1].square().mean())
    for (name, expected), actual in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(actual, expected), name
    torch.manual_seed(0)
    initial = _build_classifier(cfg.model)
    assert not torch.equal(next(model.parameters()), next(initial.parameters()))  # the steps moved the weights
