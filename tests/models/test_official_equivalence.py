"""Same weights, same outputs as the official implementation (fp32, |delta| <= 1e-4).

Needs a checkout of github.com/MzeroMiko/VMamba named by ``VMAMBA_OFFICIAL_SRC``; skipped otherwise.
The official model runs on the CPU through its own torch fallbacks (see ``official_source``).
"""
import pytest
import torch
from mmengine.registry import DefaultScope

import vmamba_mm.registry  # noqa: F401
from official_source import cpu_device_context, import_official_vmamba, official_models_dir
from vmamba_mm.converters import official_to_mm

pytestmark = pytest.mark.skipif(official_models_dir() is None,
                                reason='set VMAMBA_OFFICIAL_SRC to a checkout of the official VMamba repo')

TOLERANCE = 1e-4
NUM_CLASSES = 10
# Official constructor arguments of the two designs (from its released configs).
OFFICIAL_DESIGN = {
    'v2': dict(ssm_conv_bias=False, forward_type='v05_noz', mlp_ratio=4.0, downsample_version='v3',
               patchembed_version='v2', norm_layer='ln2d'),
    'vanilla': dict(ssm_conv_bias=True, forward_type='v0', mlp_ratio=0.0, downsample_version='v1',
                    patchembed_version='v1', norm_layer='ln'),
}
SMALL = {
    'v2': dict(dims=16, depths=(1, 2, 1, 1), ssm_ratio=2.0, d_state=2),
    'vanilla': dict(dims=16, depths=(1, 2, 1, 1), ssm_ratio=2.0, d_state=4, vanilla=True),
}


@pytest.fixture(scope='module')
def official():
    return import_official_vmamba(official_models_dir())


def official_kwargs(arch, design):
    return dict(depths=list(arch['depths']), dims=arch['dims'], ssm_d_state=arch['d_state'],
                ssm_ratio=arch['ssm_ratio'], drop_path_rate=0.0, **OFFICIAL_DESIGN[design])


def randomise_norms_and_biases(model):
    """Random init leaves norms at 1/0 and biases at 0; make every parameter matter."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'norm' in name or name.endswith('bias'):
                param.add_(0.2 * torch.randn_like(param))


def mm_classifier(arch, num_classes):
    from mmpretrain.registry import MODELS
    from vmamba_mm.models import VMamba
    last_dims = VMamba.stage_dims(VMamba.parse_arch(arch)['dims'], len(VMamba.parse_arch(arch)['depths']))[-1]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='VMamba', arch=arch, out_indices=(3, )),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=last_dims)))


def max_logit_difference(official_model, arch, sizes, num_classes):
    official_model.eval()
    randomise_norms_and_biases(official_model)
    mine = mm_classifier(arch, num_classes).eval()
    mine.load_state_dict(official_to_mm({'model': official_model.state_dict()}, task='cls'), strict=True)
    differences = []
    for size in sizes:
        images = torch.randn(2, 3, *size)
        with torch.no_grad(), cpu_device_context():
            expected = official_model(images)
            actual = mine(images, mode='tensor')
        assert expected.abs().max() > 0.1  # the comparison is not between near-zero logits
        differences.append((actual - expected).abs().max().item())
    return differences


@pytest.mark.parametrize('design', sorted(SMALL))
def test_small_classifiers_match(official, design):
    torch.manual_seed(0)
    official_model = official.VSSM(num_classes=NUM_CLASSES, **official_kwargs(SMALL[design], design))
    differences = max_logit_difference(official_model, SMALL[design], [(64, 64), (72, 40), (37, 53)], NUM_CLASSES)
    assert max(differences) <= TOLERANCE, differences


@pytest.mark.parametrize('design', sorted(SMALL))
def test_dense_backbones_match(official, design):
    """The official mmdet/mmseg backbone (fresh outnorm{i}) against VMamba with out_indices (0, 1, 2, 3)."""
    from vmamba_mm.models import VMamba
    torch.manual_seed(0)
    official_model = official.Backbone_VSSM(out_indices=(0, 1, 2, 3), **official_kwargs(SMALL[design], design))
    official_model.eval()
    randomise_norms_and_biases(official_model)
    mine = VMamba(SMALL[design]).eval()
    mine.load_state_dict(official_to_mm(official_model.state_dict(), task='backbone'), strict=True)
    images = torch.randn(1, 3, 96, 72)
    with torch.no_grad(), cpu_device_context():
        expected = official_model(images)
        actual = mine(images)
    assert len(actual) == len(expected) == 4
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        assert (a - e).abs().max() <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize('arch, builder', [('tiny', 'vmamba_tiny_s1l8'), ('vanilla-tiny', 'vanilla_vmamba_tiny')])
def test_released_tiny_models_match_at_224_and_non_square(official, arch, builder):
    torch.manual_seed(0)
    differences = max_logit_difference(getattr(official, builder)(), arch, [(224, 224), (200, 264)], 1000)
    assert max(differences) <= TOLERANCE, differences
