"""VMamba in mmpretrain's model zoo: ``list_models`` names the classifiers, ``get_model`` builds them and loads
official and vmamba_mm checkpoints strictly through vmamba_mm's loading seam."""
import importlib.util
import sys
import types
from pathlib import Path

import mmpretrain
import pytest
import torch
from mmengine.config import Config

import vmamba_mm
from vmamba_mm import model_zoo
from vmamba_mm.converters import IncompatibleCheckpointError

REPO = Path(__file__).resolve().parents[1]
CLASSIFIERS = {
    'vmamba-tiny_8xb128-300e_in1k', 'vmamba-small_8xb128-300e_in1k', 'vmamba-base_8xb128-300e_in1k',
    'vmamba-vanilla-tiny_8xb128-300e_in1k', 'vmamba-vanilla-small_8xb128-300e_in1k',
    'vmamba-vanilla-base_8xb128-300e_in1k'
}
TINY = 'vmamba-tiny_8xb128-300e_in1k'
VANILLA_TINY = 'vmamba-vanilla-tiny_8xb128-300e_in1k'
# A few-thousand-parameter stand-in for each design, so that building and loading stay cheap.
SMALL_ARCHS = {
    TINY: dict(dims=16, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1),
    VANILLA_TINY: dict(dims=16, depths=(1, 1, 1, 1), ssm_ratio=2.0, d_state=2, vanilla=True),
}


def _load_official_layout():
    path = REPO / 'tests' / 'converters' / 'official_layout.py'
    spec = importlib.util.spec_from_file_location('official_layout', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


to_official = _load_official_layout().to_official


def small(model, zoo_name=None, **kwargs):
    """``get_model(model)`` with the stand-in backbone of its design (the config's recipe otherwise); a config
    path or Config gives the zoo name whose design it has."""
    backbone = dict(_delete_=True, type='VMamba', arch=SMALL_ARCHS[zoo_name or model], out_indices=(3, ))
    return mmpretrain.get_model(model, backbone=backbone, head=dict(in_channels=128), **kwargs)


def random_weights(model):
    return {key: torch.randn_like(value) for key, value in model.state_dict().items()}


def assert_loaded(model, weights):
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(weights)
    assert all(torch.equal(loaded[key], value) for key, value in weights.items())


def save_official(path, model_weights, ema_weights, legacy=False):
    """An official classification checkpoint: model and EMA weights in official names, a pickled yacs config."""
    yacs, config = types.ModuleType('yacs'), types.ModuleType('yacs.config')
    cfg_node = type('CfgNode', (dict, ), {'__module__': 'yacs.config'})
    config.CfgNode = cfg_node
    sys.modules.update({'yacs': yacs, 'yacs.config': config})
    try:
        torch.save({'model': to_official(model_weights, legacy=legacy), 'model_ema': to_official(ema_weights),
                    'config': cfg_node(MODEL=cfg_node(TYPE='vssm')), 'epoch': 299}, path)
    finally:
        del sys.modules['yacs.config'], sys.modules['yacs']


def test_list_models_names_the_vmamba_classifiers_with_their_configs_and_checkpoints():
    assert set(mmpretrain.list_models('*vmamba*')) == CLASSIFIERS
    assert set(mmpretrain.list_models('vmamba', task='Image Classification')) == CLASSIFIERS
    for name in CLASSIFIERS:
        metainfo = mmpretrain.apis.ModelHub.get(name)
        assert metainfo.config.filename == str(REPO / 'configs' / 'classification' / f'{name}.py')
        assert metainfo.config.model.backbone.type == 'VMamba'
        assert metainfo.weights.startswith('https://github.com/MzeroMiko/VMamba/releases/download/')
    # Every name by which mmpretrain calls get_model reaches vmamba_mm's (the inferencers' among them).
    for module in (mmpretrain, mmpretrain.apis, mmpretrain.apis.model, mmpretrain.apis.base):
        assert module.get_model is model_zoo.get_model
    assert vmamba_mm.model_zoo.register_model_zoo() == tuple(sorted(CLASSIFIERS))  # a second call changes nothing
    assert set(mmpretrain.list_models('*vmamba*')) == CLASSIFIERS


@pytest.mark.parametrize('name, legacy', [(TINY, False), (VANILLA_TINY, True)], ids=['current', 'vanilla-legacy'])
def test_official_checkpoint_loads_strictly_through_the_seam(name, legacy, tmp_path):
    model = small(name)
    assert type(model).__name__ == 'ImageClassifier' and not model.training
    assert len(model._dataset_meta['classes']) == 1000  # ImageNet's, from the config's test set
    weights, ema_weights = random_weights(model), random_weights(model)
    path = tmp_path / 'official.pth'
    save_official(path, weights, ema_weights, legacy=legacy)
    loaded = small(name, pretrained=str(path))
    assert_loaded(loaded, weights)  # the `model` weights, as the official code loads them
    assert not loaded.training and loaded._metainfo.name == name


def test_vmamba_mm_checkpoint_and_config_path_load_and_keep_their_dataset_meta(tmp_path):
    weights = random_weights(small(TINY))
    path = tmp_path / 'vmamba_mm.pth'
    torch.save({'state_dict': weights, 'meta': {'dataset_meta': {'classes': ['cat', 'dog']}}}, path)
    assert_loaded(small(TINY, pretrained=str(path)), weights)
    # A config path with a VMamba backbone goes through the same seam as a zoo name.
    config = REPO / 'configs' / 'classification' / f'{TINY}.py'
    model = small(str(config), TINY, pretrained=str(path))
    assert_loaded(model, weights)
    assert model._dataset_meta == {'classes': ['cat', 'dog']}
    # As in mmpretrain, pretrained=True takes a config's load_from.
    config = Config.fromfile(config)
    config.load_from = str(path)
    assert_loaded(small(config, TINY, pretrained=True), weights)


def test_incompatible_checkpoint_and_unknown_name_are_clear_errors(tmp_path):
    weights = random_weights(small(TINY))
    official = to_official(weights)
    official['layers.0.blocks.0.op.mystery'] = torch.zeros(1)
    del official['layers.1.blocks.0.norm2.weight']
    torch.save({'model': official}, tmp_path / 'bad.pth')
    with pytest.raises(IncompatibleCheckpointError) as error:
        small(TINY, pretrained=str(tmp_path / 'bad.pth'))
    assert 'layers.0.blocks.0.op.mystery' in str(error.value)
    assert 'backbone.stages.1.blocks.0.norm2.weight' in str(error.value)
    # A checkpoint of the other design does not fit either.
    torch.save({'model': to_official(random_weights(small(VANILLA_TINY)))}, tmp_path / 'vanilla.pth')
    with pytest.raises(IncompatibleCheckpointError, match='patch_embed'):
        small(TINY, pretrained=str(tmp_path / 'vanilla.pth'))
    with pytest.raises(ValueError, match='vmamba-tiny_8xb128-300e_in1k_typo'):
        mmpretrain.get_model(TINY + '_typo')


def test_pretrained_true_downloads_the_official_release_through_the_seam(tmp_path, monkeypatch):
    model = small(VANILLA_TINY)
    weights = random_weights(model)
    release = tmp_path / 'release.pth'
    save_official(release, weights, random_weights(model), legacy=True)
    downloads = []

    def fake_download(url, destination, progress=True):
        downloads.append(url)
        Path(destination).write_bytes(release.read_bytes())

    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    assert_loaded(small(VANILLA_TINY, pretrained=True), weights)
    assert downloads == [mmpretrain.apis.ModelHub.get(VANILLA_TINY).weights]
    # url_mapping redirects the download, as in mmpretrain.
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / 'vssmtiny_dp01_ckpt_epoch_292.pth').write_bytes(release.read_bytes())
    assert_loaded(small(VANILLA_TINY, pretrained=True, url_mapping=('https://.*/', f'{mirror}/')), weights)
    assert len(downloads) == 1


def test_pretrained_true_without_a_checkpoint_is_refused(monkeypatch):
    entry = mmpretrain.apis.ModelHub._models_dict[TINY]
    monkeypatch.setattr(entry, 'weights', None)
    with pytest.raises(model_zoo.UnknownPretrainedError, match='pretrained=PATH'):
        small(TINY, pretrained=True)
    config = REPO / 'configs' / 'classification' / f'{TINY}.py'  # load_from = None
    with pytest.raises(model_zoo.UnknownPretrainedError, match=TINY):
        small(str(config), TINY, pretrained=True)


def test_other_models_go_to_mmpretrain_untouched(monkeypatch):
    calls = []
    monkeypatch.setattr(model_zoo, '_mmpretrain_get_model', lambda *args, **kwargs: calls.append((args, kwargs)))
    mmpretrain.get_model('resnet18_8xb32_in1k', pretrained='resnet.pth', device='cpu', head=dict(num_classes=3))
    assert calls == [(('resnet18_8xb32_in1k', 'resnet.pth'), dict(device='cpu', device_map=None, offload_folder=None,
                                                                  url_mapping=None, head=dict(num_classes=3)))]

