"""tools/analysis_tools/benchmark_train.py as a data-parallel run: 2 gloo processes started by
tools/dist_launch.sh (what tools/dist_train.sh runs), reported against a one-process run of the same benchmark.
On the CPU the numbers prove the plumbing only; GPU numbers are in docs/distributed.md."""
import importlib.util
import json
import sys

import pytest
import torch

from launch_paths import REPO_ROOT
from launch_runs import check, run

pytestmark = pytest.mark.slow

TOOL = 'tools/analysis_tools/benchmark_train.py'
WARMUP, ITERS, BATCH = 1, 2, 2
# The synthetic-data config with a tiny VMamba; its recipe (AMP, EMA, clipping) as written.
TINY_SYNTHETIC = f"""_base_ = [{str(REPO_ROOT / 'configs/classification/vmamba-tiny_synthetic-in1k.py')!r}]
model = dict(backbone=dict(arch=dict(_delete_=True, dims=8, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)),
             head=dict(in_channels=64))
"""


@pytest.fixture(scope='module')
def benchmark(tmp_path_factory, job_env):
    """Runs the tool with its arguments for this test: one process, or 2 through tools/dist_launch.sh."""
    folder = tmp_path_factory.mktemp('dist_benchmark')
    config = folder / 'vmamba-tiny_synthetic.py'
    config.write_text(TINY_SYNTHETIC)
    common = [config, '--iters', ITERS, '--warmup', WARMUP, '--batch-size', BATCH, '--cfg-options',
              'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']

    def launch(processes, *args):
        launcher = [sys.executable] if processes == 1 else ['bash', 'tools/dist_launch.sh', processes]
        return run([*launcher, TOOL, *common, *args], job_env)

    return folder, launch


@pytest.fixture(scope='module')
def reports(benchmark):
    """The --out JSON of the same benchmark on 1 process and on 2, the second against the first, and the
    second's output."""
    folder, launch = benchmark
    single, double = folder / '1proc.json', folder / '2proc.json'
    check(launch(1, '--out', single))
    result = check(launch(2, '--out', double, '--baseline-json', single))
    return json.loads(single.read_text()), json.loads(double.read_text()), result.stdout


def test_every_process_ran_the_benchmark_in_one_job(reports):
    _, report, _ = reports
    rows = report['rows']
    assert [row['rank'] for row in rows] == [0, 1]
    for row in rows:
        # each process ran all the steps on its own batch, under the config's recipe
        assert row['settings']['iterations_run'] == WARMUP + ITERS and row['batch_size'] == BATCH
        assert row['settings']['optim_wrapper'] == 'CPUAutocastOptimWrapper' and row['images_per_s'] > 0
    assert report['args']['launcher'] == 'pytorch'


def test_total_throughput_and_scaling_efficiency_against_one_process(reports):
    baseline, report, stdout = reports
    rows, scaling = report['rows'], report['distributed']
    assert scaling['world_size'] == 2
    assert scaling['per_process_images_per_s'] == [row['images_per_s'] for row in rows]
    # all processes' images per step over the slowest process's step
    slowest_step_s = max(row['wall_step_ms'] for row in rows) / 1e3
    assert scaling['total_images_per_s'] == pytest.approx(2 * BATCH / slowest_step_s)
    assert scaling['total_images_per_s'] <= sum(scaling['per_process_images_per_s']) * (1 + 1e-9)
    one = baseline['rows'][0]['images_per_s']
    assert scaling['baseline_images_per_s'] == one
    assert scaling['speedup'] == pytest.approx(scaling['total_images_per_s'] / one)
    assert scaling['scaling_efficiency'] == pytest.approx(scaling['total_images_per_s'] / (2 * one))
    # rank 0 alone prints: one table, then the scaling lines
    assert stdout.count('img/s') == 3, stdout[-3000:]
    assert f"{scaling['total_images_per_s']:.1f} img/s in total" in stdout
    assert f"scaling efficiency {scaling['scaling_efficiency']:.1%}" in stdout


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_train_tool', REPO_ROOT / TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_baseline_of_another_benchmark_is_refused_before_running(benchmark, reports, tmp_path, monkeypatch,
                                                                      capsys):
    folder, _ = benchmark
    baseline, _, _ = reports
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({**baseline, 'rows': [{**baseline['rows'][0], 'batch_size': 4}]}))
    monkeypatch.setenv('LOCAL_RANK', '0')  # the tool's launcher option sets it when absent
    arguments = [str(folder / 'vmamba-tiny_synthetic.py'), '--batch-size', str(BATCH), '--launcher', 'pytorch']
    # The check comes before the process group and the Runner: a process of its own is not needed.
    with pytest.raises(SystemExit) as exit:
        load_tool().main([*arguments, '--baseline-json', str(other)])
    assert str(exit.value.code) == (f'BaselineError: --baseline-json {other} measured another benchmark: '
                                    f'batch_size 4 there, 2 here')
    with pytest.raises(SystemExit) as exit:
        load_tool().main([*arguments, '--baseline-json', str(tmp_path / 'missing.json')])
    assert 'BaselineError' in str(exit.value.code) and 'No such file' in str(exit.value.code)
    assert capsys.readouterr().out == ''  # nothing was measured


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA, mmengine's own set-up reports it")
def test_a_launcher_option_without_the_launcher_is_named(benchmark, monkeypatch):
    folder, _ = benchmark
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises(SystemExit) as exit:
        load_tool().main([str(folder / 'vmamba-tiny_synthetic.py'), '--launcher', 'pytorch'])
    assert str(exit.value.code).startswith('LauncherEnvironmentError: --launcher pytorch: RANK, WORLD_SIZE, '
                                           'MASTER_ADDR, MASTER_PORT not set')


def test_the_slowest_process_sets_the_pace_and_no_baseline_means_no_efficiency():
    from vmamba_mm.analysis import train_benchmark

    rows = [dict(rank=0, batch_size=2, wall_step_ms=100.0, images_per_s=20.0),
            dict(rank=1, batch_size=2, wall_step_ms=125.0, images_per_s=16.0)]
    summary = train_benchmark.scaling_summary(rows)
    assert summary['total_images_per_s'] == pytest.approx(4 / 0.125)  # not 20 + 16
    assert summary['speedup'] is summary['scaling_efficiency'] is summary['baseline_images_per_s'] is None
    assert train_benchmark.format_scaling(summary) == ('# 2 processes: 32.0 img/s in total; '
                                                       'per process (by rank): 20.0, 16.0')
    against = train_benchmark.scaling_summary(rows, baseline=dict(images_per_s=20.0))
    assert against['speedup'] == pytest.approx(1.6) and against['scaling_efficiency'] == pytest.approx(0.8)
    assert train_benchmark.format_scaling(against).splitlines()[1] == (
        '# 1 process: 20.0 img/s; speed-up 1.60x, scaling efficiency 80.0%')
