"""Write a vmamba_mm state dict in the official VMamba key layouts, for converter tests.

This restates the official layout (mm name -> official name) independently of
``vmamba_mm.converters``, so the converter is checked against a second statement of it.
"""
import re

_SSM_NAMES = {
    'in_proj': 'in_proj',
    'conv': 'conv2d',
    'x_proj_weight': 'x_proj_weight',
    'dt_proj_weight': 'dt_projs_weight',
    'dt_proj_bias': 'dt_projs_bias',
    'A_log': 'A_logs',
    'skip': 'Ds',
    'out_norm': 'out_norm',
    'out_proj': 'out_proj',
}


def _official_key(key, *, v2, legacy, classifier_norm):
    stem = {'conv1': '0', 'norm1': '2', 'conv2': '5', 'norm2': '7', 'proj': '0', 'norm': '2'}
    if legacy:
        stem.update(proj='proj', norm='norm')
    block_norm, mixer = ('ln_1', 'self_attention') if legacy else ('norm', 'op')
    downsample = {'conv': '1', 'norm': '3'} if v2 else {'norm': 'norm', 'reduction': 'reduction'}

    if key.startswith(classifier_norm):
        return ('norm.' if legacy else 'classifier.norm.') + key[len(classifier_norm):]
    if key.startswith('head.fc.'):
        return ('head.' if legacy else 'classifier.head.') + key[len('head.fc.'):]
    if match := re.fullmatch(r'patch_embed\.(\w+)\.(\w+)', key):
        return f'patch_embed.{stem[match[1]]}.{match[2]}'
    if match := re.fullmatch(r'stages\.(\d+)\.downsample\.(\w+)\.(\w+)', key):
        return f'layers.{match[1]}.downsample.{downsample[match[2]]}.{match[3]}'
    if match := re.fullmatch(r'stages\.(\d+)\.blocks\.(\d+)\.(.+)', key):
        block, rest = f'layers.{match[1]}.blocks.{match[2]}.', match[3]
        if rest.startswith('norm1.'):
            return block + block_norm + rest[len('norm1'):]
        if rest.startswith('ssm.'):
            name, _, suffix = rest[len('ssm.'):].partition('.')
            return block + mixer + '.' + _SSM_NAMES[name] + ('.' + suffix if suffix else '')
        return block + rest  # norm2, mlp.fc1, mlp.fc2 keep their names
    return key  # outnorm{i} of a detection / segmentation backbone


def to_official(state_dict, *, legacy=False, prefix='', keep_outnorms=False, pointwise_as_conv=False):
    """Official-layout copy of a vmamba_mm state dict (``backbone.*`` keys and optional ``head.fc.*``).

    Args:
        legacy: early-release names (``patch_embed.proj``, ``ln_1``, ``self_attention``,
            top-level ``norm``/``head``) instead of the current ones.
        prefix: prepended to every key (``'backbone.'`` for a detection checkpoint).
        keep_outnorms: keep every ``outnorm{i}`` (an official detection/segmentation backbone)
            instead of turning the last stage's into the classifier norm.
        pointwise_as_conv: store pointwise weights as (out, in, 1, 1) 1x1-conv kernels.
    """
    backbone = {k[len('backbone.'):] if k.startswith('backbone.') else k: v for k, v in state_dict.items()}
    last_stage = max(int(m[1]) for k in backbone if (m := re.match(r'stages\.(\d+)\.', k)))
    v2 = 'patch_embed.conv2.weight' in backbone
    classifier_norm = 'no classifier norm' if keep_outnorms else f'outnorm{last_stage}.'
    official = {}
    for key, value in backbone.items():
        name = _official_key(key, v2=v2, legacy=legacy, classifier_norm=classifier_norm)
        if pointwise_as_conv and value.dim() == 2 and re.search(r'(in_proj|out_proj|fc1|fc2)\.weight$', name):
            value = value[:, :, None, None]
        official[prefix + name] = value
    return official
