import importlib.util
import math
from pathlib import Path

import pytest
import torch

import kernels
from vmamba_mm.models.backbones.vmamba import SS2D

REPO = Path(__file__).resolve().parents[2]
# The paper's GFLOPs at 224 x 224 (with the 1000-class head) and exact parameter counts.
PAPER = {'tiny': (4.906, 30_249_064), 'small': (8.716, 50_147_752), 'base': (15.359, 88_557_800)}


@pytest.fixture(scope='module')
def get_flops():
    spec = importlib.util.spec_from_file_location('get_flops', REPO / 'tools/analysis_tools/get_flops.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SelectiveScanOnly(torch.nn.Module):

    def forward(self, u, delta, A, B, C, D):
        return kernels.selective_scan(u, delta, A, B, C, D)


def test_selective_scan_is_counted_as_in_the_paper(get_flops):
    batch, groups, channels, state, length = 2, 4, 3, 5, 7
    inputs = (torch.randn(batch, groups * channels, length), torch.randn(batch, groups * channels, length),
              -torch.rand(groups * channels, state), torch.randn(batch, groups, state, length),
              torch.randn(batch, groups, state, length), torch.randn(groups * channels))
    flops = get_flops.count_flops(SelectiveScanOnly(), inputs).total()
    dtot = groups * channels
    assert flops == 9 * batch * length * dtot * state + batch * dtot * length


@pytest.mark.parametrize('vanilla', [False, True])
def test_ss2d_counts_projections_scan_and_pointwise_layers(get_flops, vanilla):
    dims, ratio, state, (height, width) = 32, 2.0, 3, (5, 6)
    module = SS2D(dims, ratio, state, vanilla=vanilla).eval()
    inner, rank, length = 64, 2, height * width
    x = torch.randn(1, height, width, dims)  # SS2D works on (B, H, W, C) features
    with torch.no_grad():
        by_operator = get_flops.count_flops(module, (x, )).by_operator()
    directions = 4
    assert by_operator['ss2d'] == (length * directions * inner * (rank + 2 * state)  # x_proj
                                   + length * directions * inner * rank  # dt_proj
                                   + 9 * length * directions * inner * state + length * directions * inner)
    in_proj = length * dims * inner * (2 if vanilla else 1)
    depthwise = length * inner * 9
    out_proj = length * inner * dims
    # Linear layers and the depthwise convolution: one FLOP per weight use.
    assert by_operator['linear'] + by_operator['conv'] == in_proj + depthwise + out_proj
    assert by_operator['layer_norm'] == 5 * length * inner


def run(get_flops, capsys, *argv):
    params, flops = get_flops.main(list(argv))
    return params, flops, capsys.readouterr().out


def check_paper_numbers(get_flops, capsys, arch):
    gflops, exact_params = PAPER[arch]
    params, flops, out = run(get_flops, capsys, arch)
    assert params == exact_params
    assert math.isclose(flops / 1e9, gflops, rel_tol=0.01)
    assert f'{exact_params:,}' in out and f'{flops / 1e9:.3f} G' in out


def test_tiny_classifier_matches_the_paper(get_flops, capsys):
    check_paper_numbers(get_flops, capsys, 'tiny')


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['small', 'base'])
def test_small_and_base_classifiers_match_the_paper(get_flops, capsys, arch):
    check_paper_numbers(get_flops, capsys, arch)


@pytest.mark.slow
@pytest.mark.parametrize('config, shape, paper_gflops, paper_params_m', [
    ('configs/classification/vmamba-tiny_8xb128-300e_in1k.py', None, 4.906, 30.2),
    ('configs/detection/mask-rcnn_vmamba-tiny_fpn_1x_coco.py', None, 271, 49.8),
    ('configs/segmentation/upernet_vmamba-tiny_8xb2-160k_ade20k-512x512.py', None, 949, 61.9),
])
def test_task_configs_match_the_paper(get_flops, capsys, config, shape, paper_gflops, paper_params_m):
    params, flops, _ = run(get_flops, capsys, str(REPO / config))
    assert math.isclose(flops / 1e9, paper_gflops, rel_tol=0.01)
    assert round(params / 1e6, 1) == paper_params_m


def test_shape_option_and_bad_arch(get_flops, capsys):
    _, flops, out = run(get_flops, capsys, 'tiny', '--shape', '64', '96')
    assert 'input:  1 x 3 x 64 x 96' in out
    # Every term but the head's is linear in H * W (64 x 96 divides into whole stages): T's 4.906 G, scaled.
    assert flops == pytest.approx(4.906e9 * 64 * 96 / 224**2, rel=0.01)
    with pytest.raises(ValueError, match='vanilla-tiny'):
        get_flops.main(['huge'])
