"""VMamba's ImageNet classifiers in mmpretrain's model zoo: ``mmpretrain.list_models`` and ``get_model``.

``import vmamba_mm`` registers ``configs/classification/metafile.yml`` with mmpretrain's ``ModelHub``, so

>>> import mmpretrain, vmamba_mm
>>> mmpretrain.list_models('*vmamba*')          # T/S/B and vanilla T/S/B
>>> model = mmpretrain.get_model('vmamba-tiny_8xb128-300e_in1k', pretrained='vssm1_tiny_0230s_ckpt_epoch_264.pth')

builds the metafile's config. mmpretrain's own ``get_model`` would load ``pretrained`` with mmengine's
``load_checkpoint``: non-strictly (a checkpoint that does not fit only logs a warning), without converting
official VMamba key names (an official file would load nothing), and with ``torch.load``'s weights-only
unpickler, which refuses the config an official file pickles. So for VMamba models ``get_model`` is wrapped:
the model is built by mmpretrain as before and its weights enter through :func:`vmamba_mm.loading.load_weights`,
strictly, official checkpoints (current or legacy keys, the ``model`` entry) converted. ``pretrained=True``
means the official release the metafile names, downloaded once into torch's hub cache by the same seam. Every
other model goes to mmpretrain's ``get_model`` untouched. The wrapper replaces ``get_model`` where mmpretrain
names it (``mmpretrain``, ``mmpretrain.apis``, its ``model`` module and the inferencers' base): a reference taken
with ``from mmpretrain import get_model`` before ``import vmamba_mm`` still is mmpretrain's own.

The metafiles live beside the configs in a source checkout (or an editable install); without them nothing is
registered and ``get_model`` is left as it is.
"""
import importlib.util
import re
from os import PathLike
from pathlib import Path
from typing import Optional, Tuple, Union

import yaml

from .loading import load_weights

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASSIFICATION_METAFILE = REPO_ROOT / 'configs' / 'classification' / 'metafile.yml'

# Lower-cased names of the models registered from the metafile: the ones whose weights go through vmamba_mm.
_names: frozenset = frozenset()
_mmpretrain_get_model = None


class UnknownPretrainedError(ValueError):
    """``pretrained=True`` for a model that names no checkpoint (no metafile ``Weights``, no ``load_from``)."""


def _vmamba_config(model):
    """``model`` as a Config (from a config path or a Config) if its backbone is VMamba, else None."""
    from mmengine.config import Config

    if isinstance(model, (str, PathLike)) and Path(model).suffix == '.py':
        model = Config.fromfile(model)
    if isinstance(model, Config) and (model.get('model', {}).get('backbone') or {}).get('type') == 'VMamba':
        return model
    return None


def get_model(model,
              pretrained: Union[str, bool] = False,
              device=None,
              device_map=None,
              offload_folder=None,
              url_mapping: Optional[Tuple[str, str]] = None,
              **kwargs):
    """mmpretrain's ``get_model`` (same arguments), with a VMamba classifier's weights loaded by vmamba_mm.

    For a VMamba model (a name registered from the metafile, or a config whose backbone is ``VMamba``),
    ``pretrained`` is loaded strictly through :func:`vmamba_mm.loading.load_weights`: a vmamba_mm checkpoint
    or an official VMamba one (current or legacy key names; its ``model`` weights). ``pretrained=True``
    takes the metafile's official checkpoint (for a config, its ``load_from``).

    Raises:
        IncompatibleCheckpointError: the checkpoint does not fit the model (the keys are listed).
        UnknownPretrainedError: ``pretrained=True`` and the model names no checkpoint.
        ValueError: an unknown model name (mmpretrain's message).
    """
    target = model if isinstance(model, str) and model.lower() in _names else _vmamba_config(model)
    if target is None:
        return _mmpretrain_get_model(model, pretrained, device=device, device_map=device_map,
                                     offload_folder=offload_folder, url_mapping=url_mapping, **kwargs)

    built = _mmpretrain_get_model(target, pretrained=False, **kwargs)
    if pretrained is True:
        pretrained = built._metainfo.weights if built._metainfo is not None else built._config.get('load_from')
        if not pretrained:
            raise UnknownPretrainedError(f'{model} names no checkpoint for pretrained=True; pass '
                                         'pretrained=PATH (a vmamba_mm or an official VMamba checkpoint).')
    if pretrained:
        if url_mapping is not None:
            pretrained = re.sub(url_mapping[0], url_mapping[1], pretrained)
        checkpoint = load_weights(built, pretrained, task='cls')
        dataset_meta = (checkpoint.get('meta') or {}).get('dataset_meta')
        if dataset_meta:
            built._dataset_meta = dataset_meta
    if device_map is not None:
        from mmpretrain.apis.utils import dispatch_model
        built = dispatch_model(built, device_map=device_map, offload_folder=offload_folder)
    elif device is not None:
        built.to(device)
    return built.eval()


def register_model_zoo() -> Tuple[str, ...]:
    """Register the classification metafile's models with mmpretrain's ModelHub and route their
    ``get_model`` through vmamba_mm's loading; returns the registered names (none without mmpretrain
    or without the metafile). Calling it again changes nothing."""
    global _names, _mmpretrain_get_model
    if importlib.util.find_spec('mmpretrain') is None or not CLASSIFICATION_METAFILE.is_file():
        return ()
    import mmpretrain
    import mmpretrain.apis
    from mmpretrain.apis import base, model as api

    if not _names:
        with open(CLASSIFICATION_METAFILE, encoding='utf-8') as file:
            names = frozenset(entry['Name'].lower() for entry in yaml.safe_load(file)['Models'])
        if not names <= api.ModelHub._models_dict.keys():
            api.ModelHub.register_model_index(CLASSIFICATION_METAFILE, config_prefix=REPO_ROOT)
        _names = names
    if _mmpretrain_get_model is None:
        _mmpretrain_get_model = api.get_model
        # Every name mmpretrain resolves get_model through: the package, apis, its module, the inferencers' base.
        for module in (mmpretrain, mmpretrain.apis, api, base):
            if getattr(module, 'get_model', None) is _mmpretrain_get_model:
                module.get_model = get_model
    return tuple(sorted(_names))
