"""Official VMamba checkpoints (github MzeroMiko/VMamba) -> vmamba_mm state dicts.

This is the only place that knows the official parameter names. Two official layouts exist:

* current: ``patch_embed.{0,2,5,7}``, ``layers.i.blocks.j.{norm,op,norm2,mlp}``,
  ``layers.i.downsample.{1,3}`` (current design) or ``.{norm,reduction}`` (vanilla), ``classifier.{norm,head}``;
* legacy (early vanilla releases): ``patch_embed.{proj,norm}``, ``ln_1``, ``self_attention``, and a
  top-level ``norm``/``head``.

Classification checkpoints hold them under ``model``/``model_ema``. The official detection and segmentation
checkpoints (mmengine's ``state_dict``) put the backbone under ``backbone.``, with an ``outnorm{i}`` per stage and
no classifier, beside the neck and heads in mm names; the vanilla ones (``MM_VSSM``, or the first release's
``MMDET_VSSM``) come in either naming.

A pure key map, like timm's checkpoint filter functions: it renames and reshapes tensors and
names every official key that has no destination; it builds no model and reads no file.
:mod:`vmamba_mm.loading` reads checkpoint files and checks the converted keys and shapes against
the model they are loaded into, so the model classes never see official names.
"""
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional

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
# vmamba_mm Linear weights that early official releases stored as 1x1 convolutions.
_LINEAR_WEIGHT = re.compile(r'stages\.\d+\.(blocks\.\d+\.(ssm\.(in|out)_proj|mlp\.fc[12])|downsample\.reduction)\.weight')


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


class OfficialConversion(NamedTuple):
    """An official state dict in vmamba_mm names, and the official keys that found no place in it."""
    state_dict: 'OrderedDict[str, torch.Tensor]'
    unknown: List[str]
    missing: List[str]


def _last_stage(backbone: Mapping[str, torch.Tensor]) -> int:
    stages = [int(match[1]) for match in map(re.compile(r'stages\.(\d+)\.').match, backbone) if match]
    if not stages:
        raise IncompatibleCheckpointError('Cannot tell the VMamba architecture of this checkpoint: no stage/block '
                                          'entry (layers.<i>.blocks.<j>.*).')
    return max(stages)


def convert_official(state_dict: Mapping[str, torch.Tensor], task: str) -> OfficialConversion:
    """Rename an official state dict (current or legacy layout) to vmamba_mm names for ``task``.

    A pure key map: nothing is checked against a model here. Keys without a destination are
    returned as ``unknown`` (official names); for ``'cls'``, a missing classifier norm or head is
    returned as ``missing`` (official names). The caller decides whether they are fatal.
    """
    if task not in TASKS:
        raise ValueError(f'Unknown task {task!r}; choose one of {TASKS}.')
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
        elif value.dim() == 4 and value.shape[2:] == (1, 1) and _LINEAR_WEIGHT.fullmatch(name):
            backbone[name] = value.flatten(1)  # from when the pointwise layers were 1x1 convs
        else:
            backbone[name] = value

    head, missing = OrderedDict(), []
    if task == 'cls':
        last_stage = _last_stage(backbone)
        for part in ('weight', 'bias'):
            for official_name, mm_name, target in ((f'norm.{part}', f'outnorm{last_stage}.{part}', backbone),
                                                   (f'head.{part}', f'head.fc.{part}', head)):
                if official_name in classifier:
                    target[mm_name] = classifier.pop(official_name)
                else:
                    missing.append(f'classifier.{official_name}')
        unknown += [f'classifier.{key}' for key in classifier]
        unknown += list(passthrough)  # the neck and heads of a detector have no place in a classifier

    prefix = '' if task == 'backbone' else BACKBONE_PREFIX
    converted = OrderedDict((prefix + key, value) for key, value in backbone.items())
    converted.update(head)
    if task in ('det', 'seg'):
        converted.update(passthrough)
    return OfficialConversion(converted, unknown, missing)


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
        IncompatibleCheckpointError: naming the official keys that have no destination, and the
            classifier keys a ``'cls'`` conversion lacks. Shapes are checked where the result is
            loaded (:func:`vmamba_mm.loading.load_weights`), against the model itself.
    """
    conversion = convert_official(unwrap_state_dict(checkpoint, ema=ema), task)
    if conversion.unknown or conversion.missing:
        raise IncompatibleCheckpointError(
            f'Official checkpoint does not convert cleanly for task {task!r} (official names):\n  ' +
            describe_mismatch(conversion.missing, conversion.unknown))
    return conversion.state_dict
