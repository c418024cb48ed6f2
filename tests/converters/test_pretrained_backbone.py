"""``VMamba(init_cfg=dict(type='Pretrained', ...))`` loads official and mm checkpoints strictly."""
import pytest
import torch

from official_layout import to_official
from vmamba_mm.converters import IncompatibleCheckpointError
from vmamba_mm.models import VMamba

V2 = dict(dims=16, depths=(1, 2, 1, 1), ssm_ratio=2.0, d_state=2)
VANILLA = dict(dims=16, depths=(1, 2, 1, 1), ssm_ratio=2.0, d_state=4, vanilla=True)


def random_state(arch, out_indices=(3, )):
    return {k: torch.randn_like(v) for k, v in VMamba(arch, out_indices=out_indices).state_dict().items()}


def pretrained(arch, path, prefix=None, out_indices=(0, 1, 2, 3)):
    return VMamba(arch, out_indices=out_indices, init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix=prefix))


@pytest.mark.parametrize('arch, legacy', [(V2, False), (VANILLA, True)], ids=['v2', 'vanilla-legacy'])
def test_official_classification_checkpoint_loads_into_a_dense_backbone(arch, legacy, tmp_path):
    state = random_state(arch)
    head = {'head.fc.weight': torch.randn(10, 128), 'head.fc.bias': torch.randn(10)}
    path = tmp_path / 'official.pth'
    torch.save({'model': to_official({**state, **head}, legacy=legacy), 'epoch': 1}, path)
    backbone = pretrained(arch, path)
    fresh_outnorms = {k: v.clone() for k, v in backbone.state_dict().items() if k.startswith('outnorm')}
    backbone.init_weights()
    loaded = backbone.state_dict()
    for key, value in state.items():
        if not key.startswith('outnorm'):
            assert torch.equal(loaded[key], value), key
    # As in the official detection/segmentation code, every outnorm is a new layer.
    for key, value in fresh_outnorms.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize('arch, legacy', [(V2, False), (VANILLA, False), (VANILLA, True)],
                         ids=['v2', 'vanilla', 'vanilla-first-release-names'])
def test_official_detection_checkpoint_loads_with_its_outnorms(arch, legacy, tmp_path):
    state = random_state(arch, out_indices=(0, 1, 2, 3))
    official = to_official(state, legacy=legacy, prefix='backbone.', keep_outnorms=True)
    official['neck.fpn_convs.0.conv.weight'] = torch.randn(4, 4, 3, 3)
    path = tmp_path / 'official_det.pth'
    torch.save({'state_dict': official, 'meta': {}}, path)
    backbone = pretrained(arch, path, prefix='backbone.')
    backbone.init_weights()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_mm_classifier_checkpoint_loads_under_its_prefix(tmp_path):
    state = random_state(V2)
    path = tmp_path / 'mm_cls.pth'
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in state.items()}, 'head.fc.bias': torch.zeros(3)},
                'meta': {}}, path)
    backbone = pretrained(V2, path, prefix='backbone.', out_indices=(3, ))
    backbone.init_weights()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_whole_model_checkpoint_without_prefix_asks_for_one(tmp_path):
    path = tmp_path / 'mm_cls.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in random_state(V2).items()}}, path)
    with pytest.raises(IncompatibleCheckpointError, match="prefix='backbone.'"):
        pretrained(V2, path, out_indices=(3, )).init_weights()


def test_bad_keys_fail_loudly_and_leave_the_model_untouched(tmp_path):
    official = to_official({**random_state(V2), 'head.fc.weight': torch.randn(10, 128),
                            'head.fc.bias': torch.randn(10)})
    official['layers.0.blocks.0.op.mystery'] = torch.zeros(1)
    path = tmp_path / 'bad.pth'
    torch.save({'model': official}, path)
    backbone = pretrained(V2, path)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(IncompatibleCheckpointError, match='layers.0.blocks.0.op.mystery'):
        backbone.init_weights()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_checkpoint_of_another_arch_names_the_mismatches(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': random_state(dict(V2, d_state=3))}, path)
    with pytest.raises(IncompatibleCheckpointError, match=r'stages\.0\.blocks\.0\.ssm\.A_log'):
        pretrained(V2, path).init_weights()


def test_prefix_that_selects_nothing_is_reported(tmp_path):
    path = tmp_path / 'mm.pth'
    torch.save({'state_dict': random_state(V2)}, path)
    with pytest.raises(IncompatibleCheckpointError, match="prefix 'backbone.'"):
        pretrained(V2, path, prefix='backbone.').init_weights()


def test_other_init_cfgs_go_through_mmengine():
    backbone = VMamba(V2, init_cfg=dict(type='Constant', layer='Conv2d', val=0.5, bias=0.0))
    backbone.init_weights()
    assert torch.all(backbone.patch_embed.conv1.weight == 0.5)


def test_loads_when_a_parent_model_initialises_its_children(tmp_path):
    """Runners call init_weights on the whole detector/segmentor, which recurses into the backbone."""
    from mmengine.model import BaseModule

    class Detector(BaseModule):

        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone
            self.neck = torch.nn.Conv2d(16, 4, 1)

    state = random_state(V2, out_indices=(0, 1, 2, 3))
    path = tmp_path / 'mm_backbone.pth'
    torch.save({'state_dict': state}, path)
    detector = Detector(pretrained(V2, path))
    detector.init_weights()
    for key, value in detector.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
