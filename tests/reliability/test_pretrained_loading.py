"""Pretrained weights that do not fit the backbone: an error naming the keys, or, when asked, a partial
load that names what it left out."""
import re

import pytest
import torch

from vmamba_mm.loading import OUTNORMS_OPTIONAL, IncompatibleCheckpointError, load_weights
from vmamba_mm.models import VMamba

TINY = dict(dims=8, depths=(1, 1), ssm_ratio=1.0, d_state=1)


def _model():
    return VMamba(TINY, out_indices=(1, ))


def load_pretrained_backbone(model, path, strict=True):
    """What ``VMamba(init_cfg=dict(type='Pretrained', ...)).init_weights()`` does with the file."""
    load_weights(model, path, task='backbone', optional=OUTNORMS_OPTIONAL, strict=strict)


@pytest.fixture
def mismatched_checkpoint(tmp_path):
    """A checkpoint with one key missing, one of another shape and one foreign key (a classifier head's)."""
    donor = _model().state_dict()
    state_dict = {key: (torch.zeros(*value.shape[:-1], value.shape[-1] + 1) if key == 'stages.0.blocks.0.norm1.weight'
                        else value.clone().fill_(0.5)) for key, value in donor.items() if key != 'stages.1.blocks.0.norm2.bias'}
    state_dict['head.fc.weight'] = torch.zeros(10, 16)
    path = tmp_path / 'wider.pth'
    torch.save({'state_dict': state_dict}, path)
    return path


def test_a_mismatched_checkpoint_raises_with_the_keys(mismatched_checkpoint):
    model = _model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(IncompatibleCheckpointError) as error:
        load_pretrained_backbone(model, str(mismatched_checkpoint))
    message = str(error.value)
    assert message.startswith('Checkpoint does not fit VMamba:\n  missing keys (1): stages.1.blocks.0.norm2.bias\n'
                              '  unexpected keys (1): head.fc.weight\n  shape mismatches (1): '
                              'stages.0.blocks.0.norm1.weight (checkpoint (9,) vs model (8,))')
    assert message.endswith('To load only the keys that fit, pass strict=False.')
    for key, value in model.state_dict().items():  # nothing was loaded
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_strict_false_loads_what_fits_and_names_the_rest(mismatched_checkpoint, mm_log):
    model = _model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    load_pretrained_backbone(model, str(mismatched_checkpoint), strict=False)
    left_out = {'stages.1.blocks.0.norm2.bias', 'stages.0.blocks.0.norm1.weight'}
    for key, value in model.state_dict().items():
        if key in left_out:
            torch.testing.assert_close(value, before[key], rtol=0, atol=0)
        else:
            assert bool((value == 0.5).all()), key
    (warning, ) = [message for message in mm_log if message.startswith('Partial load')]
    assert re.fullmatch(r'Partial load \(strict=False\) into VMamba; not loaded:\n  missing keys \(1\): '
                        r'stages\.1\.blocks\.0\.norm2\.bias\n  unexpected keys \(1\): head\.fc\.weight\n  '
                        r'shape mismatches \(1\): stages\.0\.blocks\.0\.norm1\.weight \(checkpoint \(9,\) vs model '
                        r'\(8,\)\)', warning)


def test_init_cfg_strict_false_is_the_opt_out(mismatched_checkpoint, mm_log):
    model = VMamba(TINY, out_indices=(1, ),
                   init_cfg=dict(type='Pretrained', checkpoint=str(mismatched_checkpoint), strict=False))
    model.init_weights()
    assert bool((model.state_dict()['patch_embed.conv1.weight'] == 0.5).all())
    assert any(message.startswith('Partial load (strict=False) into VMamba') for message in mm_log)
    with pytest.raises(IncompatibleCheckpointError, match='To load only the keys that fit, pass strict=False'):
        VMamba(TINY, out_indices=(1, ), init_cfg=dict(type='Pretrained', checkpoint=str(mismatched_checkpoint))
               ).init_weights()
