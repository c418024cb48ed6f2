import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

from official_layout import to_official
from vmamba_mm.converters import IncompatibleCheckpointError, infer_arch, is_official_layout, official_to_mm
from vmamba_mm.loading import load_weights, read_checkpoint
from vmamba_mm.models import VMamba

V2 = dict(dims=16, depths=(1, 2, 1, 1), ssm_ratio=2.0, d_state=2)
VANILLA = dict(dims=16, depths=(1, 2, 1, 1), ssm_ratio=2.0, d_state=4, vanilla=True)
NUM_CLASSES = 10
REPO = Path(__file__).resolve().parents[2]


def mm_classifier_state(arch):
    """A classifier state dict (``backbone.*`` + ``head.fc.*``) with a distinct random value
    in every tensor, so a tensor routed to the wrong place cannot go unnoticed."""
    backbone = VMamba(arch, out_indices=(3, ))
    state = {f'backbone.{k}': torch.randn_like(v) for k, v in backbone.state_dict().items()}
    state['head.fc.weight'] = torch.randn(NUM_CLASSES, backbone.dims[-1])
    state['head.fc.bias'] = torch.randn(NUM_CLASSES)
    return state


def assert_same_tensors(actual, expected):
    assert sorted(actual) == sorted(expected)
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


@pytest.mark.parametrize('arch', [V2, VANILLA], ids=['v2', 'vanilla'])
@pytest.mark.parametrize('legacy', [False, True], ids=['current', 'legacy'])
def test_classification_checkpoint_lands_in_the_right_tensors(arch, legacy):
    expected = mm_classifier_state(arch)
    official = to_official(expected, legacy=legacy)
    assert is_official_layout(official) and not is_official_layout(expected)
    assert_same_tensors(official_to_mm({'model': official}, task='cls'), expected)


def test_known_names_map_as_documented():
    """A few hand-written pairs, independent of the test helper."""
    state = mm_classifier_state(V2)
    official = to_official(state)
    pairs = {
        'patch_embed.5.weight': 'backbone.patch_embed.conv2.weight',
        'layers.1.blocks.1.op.dt_projs_weight': 'backbone.stages.1.blocks.1.ssm.dt_proj_weight',
        'layers.1.blocks.1.op.Ds': 'backbone.stages.1.blocks.1.ssm.skip',
        'layers.0.blocks.0.norm.weight': 'backbone.stages.0.blocks.0.norm1.weight',
        'layers.2.downsample.1.weight': 'backbone.stages.2.downsample.conv.weight',
        'classifier.norm.bias': 'backbone.outnorm3.bias',
        'classifier.head.weight': 'head.fc.weight',
    }
    converted = official_to_mm(official, task='cls')
    for official_key, mm_key in pairs.items():
        assert torch.equal(converted[mm_key], official[official_key])


def test_legacy_vanilla_names():
    state = mm_classifier_state(VANILLA)
    official = to_official(state, legacy=True)
    assert {'patch_embed.proj.weight', 'norm.weight', 'head.weight', 'layers.0.blocks.0.ln_1.weight',
            'layers.0.blocks.0.self_attention.A_logs', 'layers.0.downsample.reduction.weight'} <= set(official)
    converted = official_to_mm(official, task='cls')
    assert torch.equal(converted['backbone.patch_embed.proj.weight'], official['patch_embed.proj.weight'])
    assert torch.equal(converted['backbone.stages.0.blocks.0.ssm.A_log'],
                       official['layers.0.blocks.0.self_attention.A_logs'])
    assert torch.equal(converted['head.fc.bias'], official['head.bias'])


def test_pointwise_weights_stored_as_1x1_convs_are_flattened():
    expected = mm_classifier_state(V2)
    official = to_official(expected, pointwise_as_conv=True)
    assert official['layers.0.blocks.0.op.in_proj.weight'].dim() == 4
    assert_same_tensors(official_to_mm(official, task='cls'), expected)


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_dense_tasks_drop_the_classifier(task):
    state = mm_classifier_state(V2)
    converted = official_to_mm({'model': to_official(state)}, task=task)
    expected = {k: v for k, v in state.items() if k.startswith('backbone.') and 'outnorm' not in k}
    assert_same_tensors(converted, expected)


def test_official_detection_checkpoint_keeps_outnorms_and_heads():
    state = {k: v for k, v in mm_classifier_state(V2).items() if k.startswith('backbone.')}
    state.update({f'backbone.outnorm{i}.weight': torch.randn(16 * 2**i) for i in range(3)})
    state.update({f'backbone.outnorm{i}.bias': torch.randn(16 * 2**i) for i in range(3)})
    official = to_official(state, prefix='backbone.', keep_outnorms=True)
    official['neck.lateral_convs.0.conv.weight'] = torch.randn(8, 16, 1, 1)
    official['roi_head.bbox_head.fc_cls.bias'] = torch.randn(81)
    converted = official_to_mm({'state_dict': official, 'meta': {}}, task='det')
    expected = dict(state, **{k: official[k] for k in ('neck.lateral_convs.0.conv.weight',
                                                       'roi_head.bbox_head.fc_cls.bias')})
    assert_same_tensors(converted, expected)
    with pytest.raises(IncompatibleCheckpointError, match='neck.lateral_convs'):
        official_to_mm(official, task='cls')


DENSE_HEADS = {
    'det': ('neck.lateral_convs.0.conv.weight', 'rpn_head.rpn_conv.bias', 'roi_head.mask_head.conv_logits.bias'),
    'seg': ('decode_head.conv_seg.weight', 'auxiliary_head.conv_seg.bias'),
}


@pytest.mark.parametrize('legacy', [False, True], ids=['current-names', 'first-release-names'])
@pytest.mark.parametrize('task', sorted(DENSE_HEADS))
def test_official_vanilla_detection_and_segmentation_checkpoints(task, legacy):
    """The official vanilla detectors and segmentors (``MM_VSSM``, and ``MMDET_VSSM`` of the first release):
    an mmengine checkpoint whose ``backbone.*`` keys are official, with patch merging, an outnorm per stage
    and, in the first release's code, ``patch_embed.proj``/``ln_1``/``self_attention``; neck and heads in mm names."""
    backbone = VMamba(VANILLA, out_indices=(0, 1, 2, 3))
    state = {f'backbone.{k}': torch.randn_like(v) for k, v in backbone.state_dict().items()}
    heads = {key: torch.randn(3) for key in DENSE_HEADS[task]}
    official = {**to_official(state, legacy=legacy, prefix='backbone.', keep_outnorms=True), **heads}
    stem = 'backbone.patch_embed.proj.weight' if legacy else 'backbone.patch_embed.0.weight'
    block = 'backbone.layers.1.blocks.1.' + ('self_attention.A_logs' if legacy else 'op.A_logs')
    assert {stem, block, 'backbone.layers.0.downsample.reduction.weight', 'backbone.outnorm0.weight'} <= set(official)
    checkpoint = {'meta': {'epoch': 12}, 'state_dict': official, 'optimizer': {'state': {}, 'param_groups': []}}
    assert_same_tensors(official_to_mm(checkpoint, task=task), {**state, **heads})
    assert_same_tensors(official_to_mm(checkpoint, task='backbone'),
                        {key[len('backbone.'):]: value for key, value in state.items()})


def test_ema_weights_are_chosen_on_request():
    model_state, ema_state = mm_classifier_state(V2), mm_classifier_state(V2)
    checkpoint = {'model': to_official(model_state), 'model_ema': to_official(ema_state), 'epoch': 3}
    assert_same_tensors(official_to_mm(checkpoint, task='cls'), model_state)
    assert_same_tensors(official_to_mm(checkpoint, task='cls', ema=True), ema_state)
    with pytest.raises(IncompatibleCheckpointError, match='model_ema'):
        official_to_mm({'model': checkpoint['model']}, task='cls', ema=True)


def test_arch_is_inferred_from_the_weights():
    state = official_to_mm(to_official(mm_classifier_state(VANILLA)), task='backbone')
    assert infer_arch(state) == dict(dims=[16, 32, 64, 128], depths=[1, 2, 1, 1], ssm_ratio=2.0, d_state=4,
                                     vanilla=True)


def test_bad_keys_fail_loudly_naming_them():
    official = to_official(mm_classifier_state(V2))
    official['layers.0.blocks.0.op.mystery'] = torch.zeros(1)
    del official['layers.1.blocks.0.norm2.weight']
    official['layers.2.blocks.0.op.x_proj_weight'] = official['layers.2.blocks.0.op.x_proj_weight'][:, 1:]
    backbone = VMamba(V2, out_indices=(3, ))  # the shapes are checked against the model the weights are for
    with pytest.raises(IncompatibleCheckpointError) as error:
        load_weights(backbone, {'model': official}, task='backbone', optional=r'outnorm')
    message = str(error.value)
    assert 'layers.0.blocks.0.op.mystery' in message
    assert 'stages.1.blocks.0.norm2.weight' in message
    assert 'stages.2.blocks.0.ssm.x_proj_weight (checkpoint (4, 7, 128) vs model (4, 8, 128))' in message


def test_missing_classifier_fails_for_classification_only():
    official = to_official(mm_classifier_state(V2))
    without_head = {k: v for k, v in official.items() if not k.startswith('classifier.')}
    with pytest.raises(IncompatibleCheckpointError, match='classifier.head.weight'):
        official_to_mm(without_head, task='cls')
    assert 'backbone.stages.0.blocks.0.ssm.skip' in official_to_mm(without_head, task='det')


def test_mm_layout_and_unknown_task_are_refused():
    with pytest.raises(IncompatibleCheckpointError, match='Not an official'):
        official_to_mm(mm_classifier_state(V2), task='cls')
    with pytest.raises(ValueError, match='task'):
        official_to_mm(to_official(mm_classifier_state(V2)), task='detection')


def install_fake_yacs(monkeypatch):
    """A stand-in for the yacs package, so a checkpoint can pickle a CfgNode like the official ones."""
    yacs, config = types.ModuleType('yacs'), types.ModuleType('yacs.config')

    class CfgNode(dict):
        pass

    CfgNode.__module__, CfgNode.__qualname__ = 'yacs.config', 'CfgNode'
    config.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, 'yacs', yacs)
    monkeypatch.setitem(sys.modules, 'yacs.config', config)
    return CfgNode


def save_official_file(path, state, monkeypatch):
    cfg_node = install_fake_yacs(monkeypatch)
    config = cfg_node(MODEL=cfg_node(TYPE='vssm'))
    torch.save({'model': to_official(state), 'config': config, 'epoch': 299, 'max_accuracy': 82.6}, path)
    monkeypatch.delitem(sys.modules, 'yacs.config')
    monkeypatch.delitem(sys.modules, 'yacs')


def test_official_file_with_a_pickled_config_loads_without_importing_it(tmp_path, monkeypatch):
    state = mm_classifier_state(V2)
    path = tmp_path / 'official.pth'
    save_official_file(path, state, monkeypatch)
    checkpoint = read_checkpoint(str(path))
    assert 'yacs' not in sys.modules
    assert checkpoint['epoch'] == 299
    assert_same_tensors(official_to_mm(checkpoint, task='cls'), state)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        read_checkpoint(str(tmp_path / 'nowhere.pth'))


def test_urls_are_downloaded_once_into_the_torch_hub_cache(tmp_path, monkeypatch):
    source = tmp_path / 'src.pth'
    torch.save({'model': {'w': torch.ones(2)}}, source)
    downloads = []

    def fake_download(url, destination, progress=True):
        downloads.append(url)
        Path(destination).write_bytes(source.read_bytes())

    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    url = 'https://example.org/releases/%23v2cls/vssm_tiny.pth'
    for _ in range(2):
        assert torch.equal(read_checkpoint(url)['model']['w'], torch.ones(2))
    assert downloads == [url]


def load_tool(relative_path):
    spec = importlib.util.spec_from_file_location(Path(relative_path).stem, REPO / relative_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('arch', [V2, VANILLA], ids=['v2', 'vanilla'])
def test_vmamba2mm_tool_writes_an_mm_checkpoint(arch, tmp_path, monkeypatch, capsys):
    state = mm_classifier_state(arch)
    src, dst = tmp_path / 'official.pth', tmp_path / 'out' / 'mm.pth'
    save_official_file(src, state, monkeypatch)
    load_tool('tools/model_converters/vmamba2mm.py').main([str(src), str(dst), '--task', 'cls'])
    written = torch.load(dst, weights_only=True)
    assert_same_tensors(written['state_dict'], state)
    assert written['meta']['task'] == 'cls' and written['meta']['arch']['depths'] == [1, 2, 1, 1]
    assert str(dst) in capsys.readouterr().out


def test_vmamba2mm_tool_writes_nothing_on_bad_keys(tmp_path):
    official = to_official(mm_classifier_state(V2))
    official['layers.0.blocks.0.op.mystery'] = torch.zeros(1)
    src, dst = tmp_path / 'official.pth', tmp_path / 'mm.pth'
    torch.save({'model': official}, src)
    with pytest.raises(IncompatibleCheckpointError, match='mystery'):
        load_tool('tools/model_converters/vmamba2mm.py').main([str(src), str(dst), '--task', 'det'])
    assert not dst.exists()
