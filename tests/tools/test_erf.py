"""Effective receptive field: the gradient map against models whose receptive field is known, and the tool."""
import numpy as np
import pytest
import torch
from analysis_fixtures import check_png, write_checkpoint, write_image, write_tiny_classifier_config
from tool_runner import load_tool

from vmamba_mm.analysis.models import build_model
from vmamba_mm.analysis.receptive_field import area_ratios, effective_receptive_field, log_scale


class ConvBackbone(torch.nn.Module):
    """One 3x3 convolution of stride 1: every output sees exactly the 3x3 input window around it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return (self.conv(x), )


def test_erf_is_the_window_a_convolution_sees():
    torch.manual_seed(0)
    backbone = ConvBackbone()
    images = [torch.randn(1, 3, 9, 11) for _ in range(3)]
    erf = effective_receptive_field(backbone, images)
    assert erf.shape == (9, 11)
    support = np.argwhere(erf > 0)
    assert support.min(0).tolist() == [3, 4] and support.max(0).tolist() == [5, 6]


def test_erf_averages_over_images():
    backbone = ConvBackbone()
    first, second = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    mean = effective_receptive_field(backbone, [first, second])
    separate = effective_receptive_field(backbone, [first]) + effective_receptive_field(backbone, [second])
    np.testing.assert_allclose(mean, separate / 2, rtol=1e-6)


def test_erf_of_vmamba_reaches_every_pixel():
    """SS2D scans the whole map: even at initialisation the centre depends on all input pixels."""
    torch.manual_seed(0)
    from vmamba_mm.models import VMamba

    backbone = VMamba(arch=dict(dims=16, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1), out_indices=(3, )).eval()
    erf = effective_receptive_field(backbone, [torch.randn(1, 3, 64, 64)])
    assert (erf > 0).all()


def test_log_scale_and_area_ratios():
    erf = np.zeros((10, 10))
    erf[5, 5] = 1000.0
    erf[0, 0] = 1.0
    erf[9, 9] = 1e-9
    scaled = log_scale(erf, decades=3)
    assert scaled[5, 5] == 1.0 and scaled[0, 0] == pytest.approx(0.0) and scaled.min() == 0.0
    assert area_ratios(erf, (0.5, 0.9999)) == {0.5: 0.01, 0.9999: 0.02}
    assert area_ratios(np.ones((4, 5)), (0.5, 1.0)) == {0.5: 0.5, 1.0: 1.0}
    with pytest.raises(ValueError, match='zero everywhere'):
        log_scale(np.zeros((3, 3)))


def test_tool_draws_before_and_after_training(tmp_path, capsys):
    config = write_tiny_classifier_config(tmp_path)
    checkpoint = write_checkpoint(build_model(str(config)), tmp_path / 'trained.pth', seed=1)
    images = tmp_path / 'images'
    images.mkdir()
    for index in range(2):
        write_image(images / f'{index}.png', size=(40 + index, 48))
    out = tmp_path / 'erf.png'
    load_tool('analysis_tools/erf.py').main(
        [str(config), str(checkpoint), '--images', str(images), '--size', '48', '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'before training: area ratio' in printed and 'after training: area ratio' in printed
    image = check_png(out, min_width=300, min_height=150)
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels side by side


def test_tool_rejects_a_checkpoint_of_another_model(tmp_path):
    from vmamba_mm.converters import IncompatibleCheckpointError

    config = write_tiny_classifier_config(tmp_path)
    (tmp_path / 'other').mkdir()
    other = build_model(str(write_tiny_classifier_config(tmp_path / 'other', num_classes=3)))
    checkpoint = write_checkpoint(other, tmp_path / 'other.pth', seed=1)
    with pytest.raises(IncompatibleCheckpointError, match='head'):
        load_tool('analysis_tools/erf.py').main([str(config), str(checkpoint), '--size', '32', '--num-images', '1',
                                                 '--out', str(tmp_path / 'erf.png')])
    assert not (tmp_path / 'erf.png').exists()
