"""The one seam through which weights enter a model.

Every path that puts a checkpoint's weights into a model goes through :func:`load_weights`:
``tools/test.py`` and a config's ``load_from``, ``--resume``, ``init_cfg=dict(type='Pretrained', ...)`` on
the model or on the VMamba backbone, the converter and the analysis and export tools. In order, it

1. reads the file as data (:func:`read_checkpoint`): ``torch.load(weights_only=True)`` with the types
   mmengine writes allow-listed and any other pickled class (an official checkpoint's yacs config) loaded
   as an inert placeholder. Nothing in a file is imported or run, and nothing in it is executed later;
2. finds the weights in it (:func:`state_dict_of`): mmengine's ``state_dict``, an official
   ``model``/``model_ema``, or a bare state dict;
3. converts an official VMamba key layout (:mod:`vmamba_mm.converters`) when the caller names the model
   the weights are for (``task``);
4. loads strictly (:func:`load_state_dict_strictly`): a missing, unexpected or mis-shaped key beyond the
   caller's documented ``optional`` ones raises :class:`IncompatibleCheckpointError` listing them before
   anything is loaded. ``strict=False`` is the explicit partial load; it names what it left out.
"""
import logging
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union
from urllib.parse import urlparse

import torch

from .compat.checkpoint import checkpoint_safe_globals
from .converters.official import (BACKBONE_PREFIX, IncompatibleCheckpointError, convert_official, describe_mismatch,
                                  is_official_layout, unwrap_state_dict)

__all__ = [
    'CheckpointError', 'IncompatibleCheckpointError', 'NOTHING_OPTIONAL', 'OUTNORMS_OPTIONAL', 'load_state_dict_strictly',
    'load_weights', 'official_checkpoint', 'read_checkpoint', 'state_dict_of'
]

# `optional` patterns: keys of the model that a checkpoint may lack.
NOTHING_OPTIONAL = r'(?!)'
# A dense-task backbone's per-stage output norms are new layers (an official classification file has one).
OUTNORMS_OPTIONAL = r'outnorm\d+\.'
_DDP_PREFIX = re.compile(r'^module\.')


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be read as one (truncated, corrupt, or not a checkpoint)."""


class _OpaqueMetadata:
    """Stands in for a class pickled into a checkpoint's metadata (e.g. the official yacs config).

    Its objects load as plain OrderedDicts: the one container the weights-only unpickler
    lets receive both items and attributes.
    """

    def __new__(cls, *args, **kwargs):
        return OrderedDict()


def _download(url: str) -> str:
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(urlparse(url).path))
    if not os.path.isfile(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(url, cached, progress=True)
    return cached


def _load_as_data(filename: str):
    with torch.serialization.safe_globals(list(checkpoint_safe_globals())):
        try:
            return torch.load(filename, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError:
            unknown = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        with torch.serialization.safe_globals([(_OpaqueMetadata, name) for name in unknown]):
            return torch.load(filename, map_location='cpu', weights_only=True)


def read_checkpoint(source: str) -> dict:
    """The checkpoint at a path or http(s) URL, read on the CPU as data.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is empty, truncated, corrupt or holds no dict.
    """
    filename = _download(source) if urlparse(source).scheme in ('http', 'https') else source
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {source} does not exist')
    try:
        checkpoint = _load_as_data(filename)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise CheckpointError(f'checkpoint {source} cannot be read (truncated or corrupt?): {error}') from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'checkpoint {source} holds a {type(checkpoint).__name__}, not a dict of weights')
    return checkpoint


def state_dict_of(checkpoint: Mapping, source: str = 'checkpoint', ema: bool = False) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint: mmengine's ``state_dict``, an official ``model`` (``model_ema`` with
    ``ema=True``) or the checkpoint itself when it is a bare state dict."""
    state_dict = unwrap_state_dict(checkpoint, ema=ema)
    if not state_dict or not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise CheckpointError(
            f"checkpoint {source} has neither 'state_dict' (mmengine) nor official VMamba weights ('model'); "
            f'top-level keys: {sorted(checkpoint)[:10]}')
    return state_dict


def _mismatches(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], optional: str):
    own = module.state_dict()
    missing = [key for key in own if key not in state_dict and not re.match(optional, key)]
    unexpected = [key for key in state_dict if key not in own]
    mismatched = {key: (value.shape, own[key].shape) for key, value in state_dict.items()
                  if key in own and value.shape != own[key].shape}
    return missing, unexpected, mismatched


PARTIAL_LOAD_HINT = 'To load only the keys that fit, pass strict=False.'


def load_state_dict_strictly(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                             optional: str = NOTHING_OPTIONAL, strict: bool = True,
                             unknown: Iterable[str] = (), hint: str = PARTIAL_LOAD_HINT) -> None:
    """``load_state_dict`` that tolerates only missing keys matching ``optional`` and names every other
    missing, unexpected or mis-shaped key in one error, before loading anything. ``unknown`` are keys of
    the source that had no place even before this (an official file's keys without a vmamba_mm name).
    ``hint`` ends the error: what the user can do about it where the load happens.

    ``strict=False`` is the explicit opt-out for partial loads: the keys that fit are loaded, the
    others are named in a warning and keep their values."""
    missing, unexpected, mismatched = _mismatches(module, state_dict, optional)
    unexpected += list(unknown)
    if missing or unexpected or mismatched:
        problems = describe_mismatch(missing, unexpected, mismatched)
        if strict:
            raise IncompatibleCheckpointError(f'Checkpoint does not fit {type(module).__name__}:\n  {problems}\n{hint}')
        from mmengine.logging import print_log
        print_log(f'Partial load (strict=False) into {type(module).__name__}; not loaded:\n  {problems}',
                  logger='current', level=logging.WARNING)
        state_dict = {key: value for key, value in state_dict.items()
                      if key not in unexpected and key not in mismatched}
    module.load_state_dict(state_dict, strict=False)


def _select(state_dict: Mapping[str, torch.Tensor], prefix: Optional[str], source: str,
            module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    state_dict = {_DDP_PREFIX.sub('', key): value for key, value in state_dict.items()}
    if prefix:
        selected = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
        if not selected:
            raise IncompatibleCheckpointError(f'No key of {source} starts with prefix {prefix!r} '
                                              f'(first keys: {list(state_dict)[:5]}).')
        return selected
    own_keys = module.state_dict().keys()
    if (not any(key.startswith(BACKBONE_PREFIX) for key in own_keys)
            and any(key.startswith(BACKBONE_PREFIX) for key in state_dict)):
        raise IncompatibleCheckpointError(f'{source} holds a whole model (keys under "backbone."): '
                                          "select the backbone with init_cfg=dict(..., prefix='backbone.').")
    return state_dict


def load_weights(module: torch.nn.Module,
                 source: Union[str, Mapping],
                 task: Optional[str] = None,
                 prefix: Optional[str] = None,
                 strict: bool = True,
                 optional: str = NOTHING_OPTIONAL,
                 ema: bool = False,
                 name: Optional[str] = None,
                 hint: str = PARTIAL_LOAD_HINT) -> dict:
    """Load a checkpoint's weights into ``module``, strictly; returns the checkpoint read.

    Args:
        module: The model (or backbone) the weights are for.
        source: A path or URL, or a checkpoint already read with :func:`read_checkpoint`.
        task: What ``module`` is, for official VMamba files: ``'cls'``/``'det'``/``'seg'`` for a whole
            classifier/detector/segmentor, ``'backbone'`` for a VMamba backbone. None: the weights must
            already be in vmamba_mm names.
        prefix: Take only the keys under it and strip it (as mmengine's ``Pretrained`` init does).
        strict: False loads what fits and names the rest in a warning.
        optional: Regular expression of the module's keys that may be absent from the checkpoint.
        ema: For official files, the ``model_ema`` weights.
        name: How to call the checkpoint in messages (default: ``source`` when it is a path).
        hint: The last line of an :class:`IncompatibleCheckpointError`: what to do about it.
    """
    if isinstance(source, str):
        name = name or source
        checkpoint = read_checkpoint(source)
    else:
        name = name or 'checkpoint'
        checkpoint = source
    state_dict = _select(state_dict_of(checkpoint, name, ema=ema), prefix, name, module)
    unknown = ()
    if task is not None and is_official_layout(state_dict):
        state_dict, unknown, _ = convert_official(state_dict, task)
    load_state_dict_strictly(module, state_dict, optional=optional, strict=strict, unknown=unknown, hint=hint)
    return checkpoint


def official_checkpoint(checkpoint: Mapping) -> bool:
    """True when a checkpoint read by :func:`read_checkpoint` holds official VMamba weights."""
    return is_official_layout(unwrap_state_dict(checkpoint))

