"""The saved-activation ledger and tool on tiny models (CPU, torch backend)."""
import json

import pytest
import torch
from torch import nn

from vmamba_mm.models.backbones.vmamba import Mlp
from tool_runner import load_tool

saved_activations = load_tool('analysis_tools/saved_activations.py')

TINY = "vmamba-{'dims': 8, 'depths': (1, 1, 1, 1), 'ssm_ratio': 1.0, 'd_state': 1}"
RESOLUTION = 32


class Square(nn.Module):

    def forward(self, x):
        return x * x  # saves x twice: one storage


class Outer(nn.Module):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 6)
        self.square = Square()

    def forward(self, x):
        return self.square(self.linear(x)).exp()  # exp saves its output, charged to Outer itself


def test_ledger_counts_each_storage_once_skips_parameters_and_charges_the_innermost_module():
    model = Outer()
    x = torch.randn(5, 4)
    with saved_activations.SavedTensorLedger(model) as ledger:
        model(x)
    rows = ledger.rows()
    # Linear saves x (its weight is a parameter); Square saves linear's output once; Outer saves exp's output.
    assert rows == {
        'Linear': dict(tensors=1, bytes=5 * 4 * 4, by_dtype={'fp32': 80}),
        'Square': dict(tensors=1, bytes=5 * 6 * 4, by_dtype={'fp32': 120}),
        'Outer': dict(tensors=1, bytes=5 * 6 * 4, by_dtype={'fp32': 120}),
    }
    assert not ledger.handles and not ledger.stack  # hooks removed
    with saved_activations.SavedTensorLedger(model) as ledger, torch.no_grad():
        model(x)
    assert ledger.rows() == {}


def test_per_image_and_fixed_split_on_a_vmamba_under_bf16_autocast():
    torch.manual_seed(0)
    model = saved_activations.build_model(TINY, kernel_backend='torch')
    rows, largest = saved_activations.per_image(model, 2, RESOLUTION, 'bf16', torch.device('cpu'), top=3)
    total = saved_activations.totals(rows)
    for key in ('tensors', 'bytes_per_image', 'fixed_bytes', 'bytes_at_batch'):
        assert total[key] == sum(row[key] for row in rows.values())
    assert total['bytes_at_batch'] == pytest.approx(2 * total['bytes_per_image'] + total['fixed_bytes'])
    assert total['bytes_per_image'] > 0
    # autocast's half copies of the weights do not grow with the batch; fp32 runs make none
    assert rows['Linear']['fixed_bytes'] > 0 and rows['Linear']['per_image_by_dtype'].keys() == {'bf16'}
    assert {'Mlp', 'SS2D', 'HalfSavingLayerNorm', 'Linear'} <= rows.keys()
    assert len(largest) == 3 and largest[0][0] >= largest[1][0] >= largest[2][0]
    for row in rows.values():
        assert sum(row['per_image_by_dtype'].values()) == pytest.approx(row['bytes_per_image'])


def expected_mlp_saving(model, precision_bytes):
    """GELU's output per image: hidden width x positions, summed over the blocks with an MLP."""
    saving = 0
    size = RESOLUTION // 4
    for stage, dims in zip(model.backbone.stages, model.backbone.dims):
        saving += len(stage.blocks) * size * size * int(dims * 4) * precision_bytes
        size = (size + 1) // 2
    return saving


@pytest.mark.parametrize('precision, element_bytes', [('fp32', 4), ('bf16', 2)])
def test_mlp_recompute_drops_exactly_the_gelu_output(monkeypatch, precision, element_bytes):
    torch.manual_seed(0)
    model = saved_activations.build_model(TINY, kernel_backend='torch')
    cpu = torch.device('cpu')
    recomputed, _ = saved_activations.per_image(model, 2, RESOLUTION, precision, cpu)
    monkeypatch.setattr(Mlp, 'forward', lambda self, x: self.fc2(nn.functional.gelu(self.fc1(x))))
    plain, _ = saved_activations.per_image(model, 2, RESOLUTION, precision, cpu)

    saving = saved_activations.totals(plain)['bytes_per_image'] - saved_activations.totals(recomputed)['bytes_per_image']
    assert saving == expected_mlp_saving(model, element_bytes)
    # both keep fc1's output (F.gelu inside Mlp.forward, or the Function); the plain fc2 also keeps GELU's output
    assert recomputed['Mlp']['bytes_per_image'] == plain['Mlp']['bytes_per_image'] == saving
    assert plain['Linear']['bytes_per_image'] - recomputed['Linear']['bytes_per_image'] == saving


def test_command_line_prints_a_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / 'saved.json'
    results = saved_activations.main(['--models', TINY, '--resolution', str(RESOLUTION), '--batch-size', '1',
                                      '--precision', 'fp32', '--kernel-backend', 'torch', '--device', 'cpu',
                                      '--top', '2', '--json', str(path)])
    out = capsys.readouterr().out
    assert 'module type' in out and '\ntotal ' in out and 'largest saved storages' in out
    written = json.loads(path.read_text())
    assert written['results'][0]['total'] == results[0]['total']
    assert written['results'][0]['rows'].keys() == results[0]['rows'].keys()
    assert len(written['results'][0]['largest']) == 2
    # fp32: no autocast copies of weights; only SS2D's -exp(A_log) does not grow with the batch
    assert results[0]['total']['fixed_bytes'] == results[0]['rows']['SS2D']['fixed_bytes']


def test_bad_batch_size_is_refused(capsys):
    with pytest.raises(SystemExit):
        saved_activations.parse_args(['--batch-size', '0', '--device', 'cpu'])
    assert '--batch-size' in capsys.readouterr().err
