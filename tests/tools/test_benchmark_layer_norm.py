"""The LayerNorm benchmark's pure logic on the CPU (Triton under the interpreter); its numbers need a GPU."""
import pytest
import torch

from tool_runner import load_tool

bench = load_tool('analysis_tools/benchmark_layer_norm.py')


def test_without_cuda_it_exits_with_a_message(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match='needs a CUDA GPU'):
        bench.main([])


def test_shapes_cover_the_48_layer_norms_of_vmamba_t():
    assert sum(calls for _, _, calls in bench.SHAPES) == 48


@pytest.mark.parametrize('mode', ['fp32', 'bf16', 'fp16'])
def test_accuracy_passes_the_kernel_and_records_dtypes(mode):
    x, weight, bias = bench.make_problem((2, 3, 5, 40), mode, 'cpu')
    row = bench.accuracy(x, weight, bias, mode)
    assert row['ok'], row
    dtype = str(bench.MODES[mode][0]).replace('torch.', '')
    assert row['triton_dtypes'] == row['torch_dtypes'] == dict(y=dtype, dx=dtype, dweight=dtype, dbias=dtype)
    assert 0 < row['triton_err']['y'] < 0.1


def test_check_fails_an_error_well_above_torchs():
    torch_errors = dict(y=1e-7, dx=1e-7, dweight=1e-6, dbias=1e-6)
    dtypes = dict.fromkeys(torch_errors, torch.float32)
    assert bench.passes(dict(torch_errors, dx=2e-7), torch_errors, dtypes)
    assert not bench.passes(dict(torch_errors, dx=1e-5), torch_errors, dtypes)


def test_step_totals_weigh_each_shape_by_its_calls():
    rows = [dict(mode='fp32', calls=calls, triton_fwd_ms=1.0, triton_fwdbwd_ms=2.0) for _, _, calls in bench.SHAPES]
    totals = bench.step_totals(rows, ('triton', ))
    assert totals == {'fp32': dict(triton_fwd_ms=48.0, triton_fwdbwd_ms=96.0)}
    assert bench.step_totals(rows[:2], ('triton', )) == {}
