"""VMamba built from config dicts through the registries of mmpretrain, mmdet and mmseg."""
import pytest
import torch
from mmengine.registry import DefaultScope

import vmamba_mm.registry
from vmamba_mm.models import VMamba

TINY = dict(dims=16, depths=(1, 1, 2, 1), ssm_ratio=1.0, d_state=2)


@pytest.fixture
def scope(request):
    """Builds run inside the library's default scope, as a config's ``default_scope`` sets it."""
    with DefaultScope.overwrite_default_scope(request.param):
        yield request.param


def test_registered_in_every_installed_library():
    assert vmamba_mm.registry.REGISTERED_LIBRARIES == ('mmpretrain', 'mmdet', 'mmseg')
    from mmdet.registry import MODELS as MMDET
    from mmpretrain.registry import MODELS as MMPRETRAIN
    from mmseg.registry import MODELS as MMSEG
    for registry in (MMPRETRAIN, MMDET, MMSEG):
        assert registry.module_dict['VMamba'] is VMamba


def test_registering_again_is_harmless():
    assert vmamba_mm.registry.register_models() == vmamba_mm.registry.REGISTERED_LIBRARIES


def classifier_cfg(arch, num_classes, in_channels):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='VMamba', arch=arch, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=in_channels))


@pytest.mark.parametrize('scope', ['mmpretrain'], indirect=True)
def test_mmpretrain_classifier_trains(scope):
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    model = MODELS.build(classifier_cfg(TINY, num_classes=5, in_channels=128))
    assert isinstance(model.backbone, VMamba)
    images = torch.randn(2, 3, 64, 64)
    samples = [DataSample().set_gt_label(label) for label in (1, 4)]
    losses = model(images, samples, mode='loss')
    losses['loss'].backward()
    assert model.backbone.stages[0].blocks[0].ssm.A_log.grad is not None
    assert model.head.fc.weight.grad is not None
    assert model(images, mode='tensor').shape == (2, 5)


@pytest.mark.parametrize('scope', ['mmpretrain'], indirect=True)
def test_mmpretrain_tiny_classifier_has_the_paper_parameter_count(scope):
    from mmpretrain.registry import MODELS
    model = MODELS.build(classifier_cfg('tiny', num_classes=1000, in_channels=768))
    assert sum(p.numel() for p in model.parameters()) == 30_249_064


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'], indirect=True)
def test_dense_backbone_builds_and_trains(scope):
    registry = pytest.importorskip(f'{scope}.registry').MODELS
    backbone = registry.build(dict(type='VMamba', arch=TINY, with_cp=True, frozen_stages=1))
    assert isinstance(backbone, VMamba)
    backbone.train()
    outs = backbone(torch.randn(2, 3, 96, 128))
    assert [o.shape for o in outs] == [(2, 16 * 2**i, 24 // 2**i, 32 // 2**i) for i in range(4)]
    sum(o.square().mean() for o in outs).backward()
    assert backbone.stages[0].blocks[0].ssm.A_log.grad is None  # frozen
    assert backbone.stages[1].blocks[0].ssm.A_log.grad is not None
