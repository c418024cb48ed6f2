"""Official VMamba checkpoints (github MzeroMiko/VMamba) -> vmamba_mm state dicts.

This is the only place that knows the official parameter names. Two official layouts exist:

* current: ``patch_embed.{0,2,5,7}``, ``layers.i.blocks.j.{norm,op,norm2,mlp}``,
  ``layers.i.downsample.{1,3}`` (v2) or ``.{norm,reduction}`` (v0), ``classifier.{norm,head}``;
  detection/segmentation checkpoints add ``backbone.`` and ``backbone.outnorm{i}``;
* legacy (early v0 releases): ``patch_embed.{proj,norm}``, ``ln_1``, ``self_attention``, and a
  top-level ``norm``/``head``.

Conversion is strict: every official key must have a destination, and the result is checked
against a VMamba of the architecture the checkpoint implies (built on the meta device), so a
missing, unexpected or mis-shaped key raises :class:`IncompatibleCheckpointError` naming it.
The only tolerated differences are the expected ones: ``outnorm*`` of a detection/segmentation
backbone may be missing (they are new layers), and the classifier is dropped for them.
"""
import logging
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict, Iterable, Mapping, Optional
from urllib.parse import urlparse

import torch

TASKS = ('cls', 'det', 'seg', 'backbone')
BACKBONE_PREFIX = 'backbone.'
NUM_DIRECTIONS = 4

# Legacy official name -> current official name.
_LEGACY_RENAMES = (
    (re.compile(r'^patch_embed\.proj\.'), 'patch_embed.0.'),
    (re.compile(r'^patch_embed\.norm\.'), 'patch_embed.2.'),
    (re.compile(r'^(layers\.\d+\.blocks\.\d+)\.ln_1\.'), r'\1.norm.'),
    (re.compile(r'^(layers\.\d+\.blocks\.\d+)\.self_attention\.'), r'\1.op.'),
    (re.compile(r'^norm\.'), 'classifier.norm.'),
    (re.compile(r'^head\.'), 'classifier.head.'),
)

# Sub-module names inside a block: official -> vmamba_mm.
_BLOCK_NAMES = {
    'norm': 'norm1',
    'op.in_proj': 'ssm.in_proj',
    'op.conv2d': 'ssm.conv',
    'op.x_proj_weight': 'ssm.x_proj_weight',
    'op.dt_projs_weight': 'ssm.dt_proj_weight',
    'op.dt_projs_bias': 'ssm.dt_proj_bias',
    'op.A_logs': 'ssm.A_log',
    'op.Ds': 'ssm.skip',
    'op.out_norm': 'ssm.out_norm',
    'op.out_proj': 'ssm.out_proj',
    'norm2': 'norm2',
    'mlp.fc1': 'mlp.fc1',
    'mlp.fc2': 'mlp.fc2',
}
# Official nn.Sequential indices -> vmamba_mm names, per design.
_STEM_NAMES = {'v2': {'0': 'conv1', '2': 'norm1', '5': 'conv2', '7': 'norm2'}, 'v0': {'0': 'proj', '2': 'norm'}}
_DOWNSAMPLE_NAMES = {'v2': {'1': 'conv', '3': 'norm'}, 'v0': {'norm': 'norm', 'reduction': 'reduction'}}

_BLOCK_KEY = re.compile(r'layers\.(\d+)\.blocks\.(\d+)\.(.+)')
_DOWNSAMPLE_KEY = re.compile(r'layers\.(\d+)\.downsample\.(\w+)\.(weight|bias)')
_STEM_KEY = re.compile(r'patch_embed\.(\w+)\.(weight|bias)')
_OUTNORM_KEY = re.compile(r'outnorm\d+\.(weight|bias)')


class IncompatibleCheckpointError(ValueError):
    """A checkpoint whose keys or shapes do not fit the model it is loaded into."""


def describe_mismatch(missing: Iterable[str] = (),
                      unexpected: Iterable[str] = (),
                      mismatched: Mapping[str, tuple] = None,
                      limit: int = 12) -> str:
    """One readable line per kind of problem, naming the keys (the first ``limit`` of each)."""

    def listing(keys):
        keys = sorted(keys)
        more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
        return ', '.join(keys[:limit]) + more

    lines = []
    missing, unexpected = list(missing), list(unexpected)
    if missing:
        lines.append(f'missing keys ({len(missing)}): {listing(missing)}')
    if unexpected:
        lines.append(f'unexpected keys ({len(unexpected)}): {listing(unexpected)}')
    if mismatched:
        shapes = [f'{k} (checkpoint {tuple(a)} vs model {tuple(b)})' for k, (a, b) in mismatched.items()]
        lines.append(f'shape mismatches ({len(shapes)}): {listing(shapes)}')
    return '\n  '.join(lines)


# ---------------------------------------------------------------------------------------------
# Reading files


class _OpaqueMetadata:
    """Stands in for a class pickled into a checkpoint's metadata (e.g. the official yacs config).

    Its objects load as plain OrderedDicts: the one container the weights-only unpickler
    lets receive both items and attributes.
    """

    def __new__(cls, *args, **kwargs):
        return OrderedDict()


def load_checkpoint_file(filename: str) -> dict:
    """Load a checkpoint with ``weights_only=True``, from a path or an http(s) URL.

    Official checkpoints pickle their yacs training config; mm checkpoints carry numpy and
    mmengine objects. The latter are allow-listed; any other class in the file becomes an
    opaque placeholder instead of being imported or run. Only tensors are needed from it.
    """
    if urlparse(filename).scheme in ('http', 'https'):
        filename = _download(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    from vmamba_mm.compat import checkpoint_safe_globals
    known = list(checkpoint_safe_globals())
    with torch.serialization.safe_globals(known):
        try:
            return torch.load(filename, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError:
            unknown = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        with torch.serialization.safe_globals([(_OpaqueMetadata, name) for name in unknown]):
            return torch.load(filename, map_location='cpu', weights_only=True)


def _download(url: str) -> str:
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(urlparse(url).path))
    if not os.path.isfile(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(url, cached, progress=True)
    return cached


def unwrap_state_dict(checkpoint: Mapping, ema: bool = False) -> Dict[str, torch.Tensor]:
    """The state dict inside an official (``model``/``model_ema``) or mm (``state_dict``) checkpoint."""
    if ema:
        if 'model_ema' not in checkpoint:
            raise IncompatibleCheckpointError(
                f'EMA weights requested but the checkpoint has no "model_ema" entry (it has {sorted(checkpoint)}).')
        return checkpoint['model_ema']
    for wrapper in ('model', 'state_dict'):
        if isinstance(checkpoint.get(wrapper), Mapping):
            return checkpoint[wrapper]
    return checkpoint


def is_official_layout(state_dict: Mapping) -> bool:
    """True for official key names (``layers.*``, optionally under ``backbone.``)."""
    return any(re.match(r'(backbone\.)?layers\.\d+\.', key) for key in state_dict)


# ---------------------------------------------------------------------------------------------
# Renaming


def _current_name(key: str) -> str:
    for pattern, replacement in _LEGACY_RENAMES:
        key = pattern.sub(replacement, key)
    return key


def _mm_backbone_name(key: str, design: str) -> Optional[str]:
    """vmamba_mm name of an official backbone key (current layout), or None if it has none."""
    match = _BLOCK_KEY.fullmatch(key)
    if match:
        stage, block, rest = match.groups()
        for official, mine in _BLOCK_NAMES.items():
            if rest == official or rest.startswith(official + '.'):
                return f'stages.{stage}.blocks.{block}.{mine}{rest[len(official):]}'
        return None
    match = _DOWNSAMPLE_KEY.fullmatch(key)
    if match and match[2] in _DOWNSAMPLE_NAMES[design]:
        return f'stages.{match[1]}.downsample.{_DOWNSAMPLE_NAMES[design][match[2]]}.{match[3]}'
    match = _STEM_KEY.fullmatch(key)
    if match and match[1] in _STEM_NAMES[design]:
        return f'patch_embed.{_STEM_NAMES[design][match[1]]}.{match[2]}'
    if _OUTNORM_KEY.fullmatch(key):
        return key
    return None


def infer_arch(backbone_state: Mapping[str, torch.Tensor]) -> dict:
    """The VMamba ``arch`` dict of a vmamba_mm backbone state dict."""
    try:
        vanilla = 'patch_embed.proj.weight' in backbone_state
        stages = {}
        for key in backbone_state:
            match = re.match(r'stages\.(\d+)\.blocks\.(\d+)\.', key)
            if match:
                stage, block = int(match[1]), int(match[2])
                stages[stage] = max(stages.get(stage, 0), block + 1)
        depths = [stages[i] for i in range(len(stages))]
        dims = [backbone_state[f'stages.{i}.blocks.0.norm1.weight'].shape[0] for i in range(len(depths))]
        first_ssm = 'stages.0.blocks.0.ssm.'
        inner_dims = backbone_state[first_ssm + 'skip'].shape[0] // NUM_DIRECTIONS
        d_state = backbone_state[first_ssm + 'A_log'].shape[1]
    except (KeyError, IndexError) as error:
        raise IncompatibleCheckpointError(f'Cannot tell the VMamba architecture of this checkpoint: '
                                          f'no stage/block entry {error}.') from None
    return dict(dims=dims, depths=depths, ssm_ratio=inner_dims / dims[0], d_state=d_state, vanilla=vanilla)


def _expected_backbone_shapes(arch: dict) -> Dict[str, torch.Size]:
    from vmamba_mm.models import VMamba
    with torch.device('meta'):
        model = VMamba(arch=arch, out_indices=range(len(arch['depths'])))
    return {key: value.shape for key, value in model.state_dict().items()}


def official_to_mm(checkpoint: Mapping, task: str = 'cls', ema: bool = False) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an official VMamba checkpoint (or its state dict) to vmamba_mm keys.

    Args:
        checkpoint: An official checkpoint dict (``model``/``model_ema`` wrapper, or the
            ``state_dict`` of an official detection/segmentation run) or a bare state dict,
            in the current or legacy key layout.
        task: ``'cls'`` for an mmpretrain ``ImageClassifier`` (``classifier.norm`` becomes the
            last stage's ``backbone.outnorm{i}``, ``classifier.head`` becomes ``head.fc``);
            ``'det'``/``'seg'`` for a detector/segmentor (``backbone.`` prefix, classifier
            dropped; the neck/head keys of an official detection/segmentation checkpoint are
            kept); ``'backbone'`` for the bare backbone (no prefix; classifier, neck and
            heads dropped).
        ema: Take ``model_ema`` instead of ``model``.

    Raises:
        IncompatibleCheckpointError: naming the keys that have no destination, that are
            missing, or whose shape does not fit.
    """
    if task not in TASKS:
        raise ValueError(f'Unknown task {task!r}; choose one of {TASKS}.')
    state_dict = unwrap_state_dict(checkpoint, ema=ema)
    if not is_official_layout(state_dict):
        raise IncompatibleCheckpointError('Not an official VMamba checkpoint: no "layers.<i>." keys '
                                          f'(first keys: {list(state_dict)[:5]}).')

    prefixed = any(key.startswith(BACKBONE_PREFIX + 'layers.') for key in state_dict)
    official, passthrough = {}, OrderedDict()
    for key, value in state_dict.items():
        if prefixed and not key.startswith(BACKBONE_PREFIX):
            passthrough[key] = value  # neck / heads of an official mmdet / mmseg run
        else:
            official[_current_name(key[len(BACKBONE_PREFIX):] if prefixed else key)] = value
    design = 'v2' if 'patch_embed.5.weight' in official else 'v0'

    backbone, classifier, unknown = OrderedDict(), {}, []
    for key, value in official.items():
        if key.startswith('classifier.'):
            classifier[key[len('classifier.'):]] = value
            continue
        name = _mm_backbone_name(key, design)
        if name is None:
            unknown.append(key)
        else:
            backbone[name] = value
    arch = infer_arch(backbone)
    expected = _expected_backbone_shapes(arch)
    last_stage = len(arch['depths']) - 1

    # Checkpoints from when the pointwise layers were 1x1 convs store (out, in, 1, 1).
    for key, value in backbone.items():
        if key in expected and value.dim() == 4 and value.shape[2:] == (1, 1) and len(expected[key]) == 2:
            backbone[key] = value.flatten(1)

    if task == 'cls':
        for part in ('weight', 'bias'):
            if f'norm.{part}' in classifier:
                backbone[f'outnorm{last_stage}.{part}'] = classifier.pop(f'norm.{part}')
        head = {f'head.fc.{part}': classifier.pop(f'head.{part}') for part in ('weight', 'bias')
                if f'head.{part}' in classifier}
        missing_head = [f'classifier.head.{part}' for part in ('weight', 'bias') if f'head.fc.{part}' not in head]
        unknown += [f'classifier.{key}' for key in classifier]
        unknown += list(passthrough)  # the neck and heads of a detector have no place in a classifier
        required = {key for key in expected if not key.startswith('outnorm')} | {f'outnorm{last_stage}.weight',
                                                                                 f'outnorm{last_stage}.bias'}
    else:
        head, missing_head = {}, []
        required = {key for key in expected if not key.startswith('outnorm')}

    missing = sorted(required - set(backbone)) + missing_head
    unexpected = [key for key in backbone if key not in expected]
    mismatched = {key: (value.shape, expected[key]) for key, value in backbone.items()
                  if key in expected and value.shape != expected[key]}
    if unknown or missing or unexpected or mismatched:
        raise IncompatibleCheckpointError(
            f'Official checkpoint does not convert cleanly to VMamba(arch={arch}) for task {task!r} '
            '(unexpected keys in official names, the others in vmamba_mm names):\n  ' +
            describe_mismatch(missing, unknown + unexpected, mismatched))

    prefix = '' if task == 'backbone' else BACKBONE_PREFIX
    converted = OrderedDict((prefix + key, value) for key, value in backbone.items())
    converted.update(head)
    if task in ('det', 'seg'):
        converted.update(passthrough)
    return converted


# ---------------------------------------------------------------------------------------------
# Loading into a model


def load_state_dict_strictly(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                             optional: str = r'outnorm\d+\.', strict: bool = True) -> None:
    """``load_state_dict`` that tolerates only missing keys matching ``optional`` and names
    every other missing, unexpected or mis-shaped key in one error.

    ``strict=False`` is the explicit opt-out for partial loads: the keys that fit are loaded, the
    others are named in a warning and keep their initial values."""
    own = module.state_dict()
    missing = [key for key in own if key not in state_dict and not re.match(optional, key)]
    unexpected = [key for key in state_dict if key not in own]
    mismatched = {key: (value.shape, own[key].shape) for key, value in state_dict.items()
                  if key in own and value.shape != own[key].shape}
    if missing or unexpected or mismatched:
        problems = describe_mismatch(missing, unexpected, mismatched)
        if strict:
            raise IncompatibleCheckpointError(f'Checkpoint does not fit {type(module).__name__}:\n  {problems}\n'
                                              'To load only the keys that fit, pass strict=False.')
        from mmengine.logging import print_log
        print_log(f'Partial load (strict=False) into {type(module).__name__}; not loaded:\n  {problems}',
                  logger='current', level=logging.WARNING)
        state_dict = {key: value for key, value in state_dict.items() if key in own and key not in mismatched}
    module.load_state_dict(state_dict, strict=False)


def load_pretrained_backbone(backbone: torch.nn.Module, filename: str, prefix: Optional[str] = None,
                             strict: bool = True) -> None:
    """Load an official or mm checkpoint file into a VMamba backbone, strictly.

    ``prefix`` selects the keys under it (e.g. ``'backbone.'`` of an mm classifier or
    detector checkpoint) and strips it, as mmengine's ``Pretrained`` init does.
    ``strict=False`` loads what fits and names the rest in a warning (see
    :func:`load_state_dict_strictly`).
    """
    state_dict = unwrap_state_dict(load_checkpoint_file(filename))
    if prefix:
        selected = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
        if not selected:
            raise IncompatibleCheckpointError(f'No key of {filename} starts with prefix {prefix!r} '
                                              f'(first keys: {list(state_dict)[:5]}).')
        state_dict = selected
    if is_official_layout(state_dict):
        state_dict = official_to_mm(state_dict, task='backbone')
    elif not prefix and any(key.startswith(BACKBONE_PREFIX) for key in state_dict):
        raise IncompatibleCheckpointError(f'{filename} holds a whole model (keys under "backbone."): '
                                          "select the backbone with init_cfg=dict(..., prefix='backbone.').")
    load_state_dict_strictly(backbone, state_dict, strict=strict)
