"""SS2D implicit attention: the unrolled weights reproduce the kernels' scan output, and the tool draws them."""
import pytest
import torch
from analysis_fixtures import check_png, write_image, write_tiny_classifier_config
from tool_runner import load_tool

import kernels
from vmamba_mm.analysis.implicit_attention import attention_weights, direction_maps, scan_inputs, scan_order
from vmamba_mm.models.backbones.vmamba import SS2D


def random_ss2d(channels=8, d_state=3, seed=0):
    torch.manual_seed(seed)
    module = SS2D(channels, ssm_ratio=1.0, d_state=d_state).double()
    with torch.no_grad():  # decays far from the initial A = -(1..N), so every state matters
        module.A_log.uniform_(-2.0, 1.0)
        module.dt_proj_bias.uniform_(-3.0, 0.0)
    return module


def scan_output(module, u):
    """The kernels' SS2D core on ``u`` without the skip term D·u: what the weights must reproduce."""
    return kernels.ss2d(u[None], module.x_proj_weight, module.dt_proj_weight, module.dt_proj_bias,
                        -torch.exp(module.A_log), torch.zeros_like(module.skip), backend='torch')[0]


@pytest.mark.parametrize('height, width, d_state', [(3, 5, 3), (4, 4, 1)])
def test_weights_times_inputs_give_the_scan_output(height, width, d_state):
    module = random_ss2d(d_state=d_state)
    u = torch.randn(module.inner_dims, height, width, dtype=torch.float64)
    expected = scan_output(module, u)
    inputs = scan_inputs(module, u)
    for query in range(height * width):
        weights = attention_weights(inputs, query)  # (4, D, H, W)
        mixed = (weights * u).sum(dim=(0, 2, 3))
        torch.testing.assert_close(mixed, expected.flatten(1)[:, query], rtol=1e-9, atol=1e-12)


def test_each_direction_only_sees_what_its_scan_has_passed():
    module = random_ss2d()
    height, width = 4, 5
    inputs = scan_inputs(module, torch.randn(module.inner_dims, height, width, dtype=torch.float64))
    order = scan_order(height, width)
    query = 7  # row 1, column 2
    weights = attention_weights(inputs, query)
    for direction in range(4):
        step = order[direction].tolist().index(query)
        seen = set(order[direction, :step + 1].tolist())
        nonzero = set(torch.nonzero(weights[direction].abs().sum(0).flatten()).flatten().tolist())
        assert nonzero == seen


def test_scan_order_follows_the_kernels_directions():
    order = scan_order(2, 3)
    assert order.tolist() == [[0, 1, 2, 3, 4, 5], [0, 3, 1, 4, 2, 5], [5, 4, 3, 2, 1, 0], [5, 2, 4, 1, 3, 0]]


def test_direction_maps_add_the_merged_view():
    weights = torch.randn(4, 6, 3, 3, dtype=torch.float64)
    maps = direction_maps(weights)
    assert maps.shape == (5, 3, 3)
    torch.testing.assert_close(maps[1], weights[1].abs().mean(0))
    torch.testing.assert_close(maps[4], weights.sum(0).abs().mean(0))


def test_query_outside_the_grid_is_an_index_error():
    module = random_ss2d()
    inputs = scan_inputs(module, torch.randn(module.inner_dims, 2, 2, dtype=torch.float64))
    with pytest.raises(IndexError, match='outside the 2x2 grid'):
        attention_weights(inputs, 4)


def test_tool_draws_five_maps_beside_the_image(tmp_path, capsys):
    config = write_tiny_classifier_config(tmp_path)
    image = write_image(tmp_path / 'image.png')
    out = tmp_path / 'attention.png'
    tool = load_tool('analysis_tools/activation_map.py')
    tool.main([str(config), '--image', str(image), '--size', '64', '48', '--stage', '1', '--block', '0',
               '--query', '40', '20', '--out', str(out)])
    assert f'activation maps written to {out}' in capsys.readouterr().out
    png = check_png(out, min_width=600, min_height=100)
    assert png.shape[1] > 4 * png.shape[0]  # input + 4 directions + merged, in one row
    with pytest.raises(IndexError, match='stage 1 has blocks 0..0'):
        tool.main([str(config), '--image', str(image), '--stage', '1', '--block', '3', '--query', '1', '1'])
    with pytest.raises(SystemExit):
        tool.main([str(config), '--image', str(image), '--size', '32', '32', '--query', '40', '1'])
