"""reproduce.py: the model index is read, measurements land beside the paper's numbers, bad input is named."""
import json
import re

import pytest
import yaml
from analysis_fixtures import REPO, check_png, write_checkpoint, write_tiny_classifier_config
from tool_runner import load_tool

from vmamba_mm.analysis.metafile import MetafileError, load_model_index
from vmamba_mm.analysis.models import build_model
from vmamba_mm.analysis.reproduction import paper_metrics


def write_index(folder, config, parameters, flops):
    """A model index with one tiny classifier whose published numbers are given."""
    metafile = folder / 'metafile.yml'
    metafile.write_text(yaml.safe_dump(dict(Models=[dict(
        Name='tiny-demo', Alias='Tiny', Config=str(config),
        Metadata={'Parameters': parameters, 'FLOPs': flops, 'FLOPs Input Shape': [32, 32]},
        Results=[dict(Task='Image Classification', Dataset='digits', Metrics={'Top 1 Accuracy': 90.0})])])))
    index = folder / 'model-index.yml'
    index.write_text(yaml.safe_dump(dict(Import=['metafile.yml'])))
    return index


def table_row(report, name):
    line = next(line for line in report.splitlines() if f'`{name}`' in line)
    return [cell.strip() for cell in line.strip('|').split('|')]


def test_report_sets_measurements_beside_the_paper(tmp_path, capsys):
    config = write_tiny_classifier_config(tmp_path)
    parameters = sum(parameter.numel() for parameter in build_model(str(config)).parameters())
    index = write_index(tmp_path, config, parameters, flops=10**9)
    log = tmp_path / 'test.json'
    log.write_text(json.dumps({'accuracy/top1': 87.5, 'accuracy/top1_origin': 80.0, 'step': 0}) + '\n')
    out = tmp_path / 'report'
    load_tool('analysis_tools/reproduce.py').main(
        ['--model-index', str(index), '--logs', f'tiny-demo={log}', '--out-dir', str(out)])
    report = (out / 'report.md').read_text()
    row = table_row(report, 'tiny-demo')
    assert row[3] == 'exact'  # parameters: counted exactly as published
    measured_flops = float(row[5])
    assert 0 < measured_flops < 1 and row[6].endswith('✗')  # 1 GFLOP published: far off
    assert row[7:9] == ['90.0', '87.5']  # top-1 from the log, the EMA weights' (not `_origin`)
    check_png(out / 'report.png', min_width=300, min_height=100)


def test_paper_only_lists_every_published_number(tmp_path):
    out = tmp_path / 'paper'
    load_tool('analysis_tools/reproduce.py').main(['--paper-only', '--out-dir', str(out)])
    report = (out / 'report.md').read_text()
    models = load_model_index(str(REPO / 'model-index.yml'))
    assert {model.task for model in models} == {'cls', 'det', 'seg'}
    for model in models:
        row = next(line for line in report.splitlines() if f'({"/" + model.config})' in line)
        for value in model.metrics.values():
            assert f' {value:.1f} ' in row
        assert f'{model.flops / 1e9:g}' in row.replace(',', '')
    assert not (out / 'report.png').exists()


def test_model_index_configs_exist():
    for model in load_model_index(str(REPO / 'model-index.yml')):
        assert (REPO / model.config).is_file(), model.config


def test_test_metrics_map_to_the_paper_names():
    assert paper_metrics('det', {'coco/bbox_mAP': 0.473, 'coco/segm_mAP': 0.427}) == pytest.approx(
        {'box AP': 47.3, 'mask AP': 42.7})
    assert paper_metrics('seg', {'mIoU': 47.9, 'aAcc': 80.0}) == {'mIoU': 47.9}
    assert paper_metrics('seg', {'mIoU': 48.8}, tta=True) == {'mIoU(ms+flip)': 48.8}
    assert paper_metrics('cls', {'accuracy/top5': 95.0}) == {}


def test_bad_arguments_are_named(tmp_path):
    tool = load_tool('analysis_tools/reproduce.py')
    with pytest.raises(tool.UnknownModelError, match='vmamba-huge'):
        tool.main(['--models', 'vmamba-huge*', '--out-dir', str(tmp_path)])
    with pytest.raises(ValueError, match='MODEL=PATH'):
        tool.main(['--models', 'vmamba-tiny*', '--logs', 'test.json', '--out-dir', str(tmp_path)])
    broken = tmp_path / 'model-index.yml'
    (tmp_path / 'metafile.yml').write_text(yaml.safe_dump(dict(Models=[dict(Name='x', Config='x.py')])))
    broken.write_text(yaml.safe_dump(dict(Import=['metafile.yml'])))
    with pytest.raises(MetafileError, match="lacks 'Metadata'"):
        load_model_index(str(broken))
    assert not list(tmp_path.glob('report.*'))


@pytest.mark.slow
def test_paper_parameter_and_flop_counts_of_tiny_small_base(tmp_path):
    """VMamba-T/S/B classifiers at 224x224: parameters exact, FLOPs within 1% of the model index."""
    out = tmp_path / 'report'
    load_tool('analysis_tools/reproduce.py').main(
        ['--models', 'vmamba-tiny_*', 'vmamba-small_*', 'vmamba-base_*', '--out-dir', str(out)])
    report = (out / 'report.md').read_text()
    for name in ('vmamba-tiny_8xb128-300e_in1k', 'vmamba-small_8xb128-300e_in1k', 'vmamba-base_8xb128-300e_in1k'):
        row = table_row(report, name)
        assert row[3] == 'exact' and re.fullmatch(r'[+-]0\.\d\d% ✓', row[6]), row


@pytest.mark.slow
def test_checkpoints_are_tested_with_test_py(digits_project, tmp_path, monkeypatch):
    """--checkpoints runs tools/test.py on the digits demo and reports the accuracy it prints."""
    demo = REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'
    index = write_index(tmp_path, demo, parameters=1, flops=1)
    checkpoint = write_checkpoint(build_model(str(demo)), tmp_path / 'random.pth', seed=0)
    monkeypatch.chdir(digits_project)  # the demo config reads data/digits
    load_tool('analysis_tools/reproduce.py').main(['--model-index', str(index), '--no-params',
                                                   '--checkpoints', f'tiny-demo={checkpoint}',
                                                   '--out-dir', str(tmp_path / 'report')])
    accuracy = float(table_row((tmp_path / 'report' / 'report.md').read_text(), 'tiny-demo')[8])
    assert 0.0 < accuracy < 50.0  # random weights on 10 balanced classes: near chance, and measured


def test_throughput_comes_from_the_benchmark_tool_on_a_gpu(tmp_path, monkeypatch):
    """benchmark.py's JSON rows land on the right model; without a GPU the report says why there is none."""
    import subprocess

    from vmamba_mm.analysis.reproduction import Measured

    tool = load_tool('analysis_tools/reproduce.py')
    models = [model for model in load_model_index(str(REPO / 'model-index.yml'))
              if model.name in ('vmamba-tiny_8xb128-300e_in1k', 'vmamba-small_8xb128-300e_in1k')]
    calls = []

    def fake_benchmark(command, **kwargs):
        calls.append(command)
        configs = command[command.index('--models') + 1:command.index('--precisions')]
        rows = [dict(model=config, mode=mode, precision='fp32', images_per_s=100.0 * index + (mode == 'train'))
                for index, config in enumerate(configs, 1) for mode in ('train', 'inference')]
        with open(command[command.index('--json') + 1], 'w') as file:
            json.dump(dict(environment={}, rows=rows), file)
        return subprocess.CompletedProcess(command, 0, '', '')

    monkeypatch.setattr(tool.subprocess, 'run', fake_benchmark)
    monkeypatch.setattr(tool.torch.cuda, 'is_available', lambda: True)
    results = {model.name: Measured() for model in models}
    tool.benchmark_throughput(models, results)
    assert len(calls) == 1 and calls[0][1].endswith('benchmark.py')
    assert [results[model.name].throughput for model in models] == [100.0, 200.0]

    monkeypatch.setattr(tool.torch.cuda, 'is_available', lambda: False)
    results = {model.name: Measured() for model in models}
    tool.benchmark_throughput(models, results)
    assert all(result.throughput is None and 'no CUDA device' in result.notes[0] for result in results.values())
