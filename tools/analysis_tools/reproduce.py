"""Reproduction report: the paper's tables (model-index.yml) beside what this installation measures.

    # parameters and FLOPs of every classification model, at 224x224 (a few minutes on a CPU)
    python tools/analysis_tools/reproduce.py --out-dir reproduce/
    # detection (1280x800) and segmentation (512x2048) FLOPs too: slow on a CPU
    python tools/analysis_tools/reproduce.py --det-flops --seg-flops --out-dir reproduce/
    # accuracy from your test logs, or by testing checkpoints (tools/test.py is run for you)
    python tools/analysis_tools/reproduce.py --models vmamba-tiny_8xb128-300e_in1k \\
        --logs vmamba-tiny_8xb128-300e_in1k=work_dirs/test_tiny/20260101_000000/20260101_000000.json
    python tools/analysis_tools/reproduce.py --models upernet_vmamba-tiny_8xb2-160k_ade20k-512x512 \\
        --checkpoints upernet_vmamba-tiny_8xb2-160k_ade20k-512x512=upernet_tiny.pth --tta

Writes ``report.md`` (one table per task: paper, measured, relative difference) and
``report.png`` (measured / paper for every measured number) into ``--out-dir``.
Parameters are counted for every selected model; FLOPs with get_flops.py's counter at the
input shape the paper used. Throughput needs a GPU and tools/analysis_tools/benchmark.py;
without them the report says so.
"""
import argparse
import fnmatch
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile

import torch

from vmamba_mm.analysis import figures
from vmamba_mm.analysis.logs import last_metrics, read_json_log
from vmamba_mm.analysis.metafile import load_model_index
from vmamba_mm.analysis.reproduction import (TASK_TITLES, Measured, comparison_table, paper_metrics, paper_table,
                                             ratio_figure)

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TOOLS)
class UnknownModelError(ValueError):
    """A model name (or pattern) matches nothing in the model index."""


def load_get_flops():
    """tools/analysis_tools/get_flops.py as a module: its counter is the one this report uses."""
    spec = importlib.util.spec_from_file_location('vmamba_mm_get_flops', osp.join(TOOLS, 'analysis_tools',
                                                                                   'get_flops.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count(get_flops, model, with_flops: bool, result: Measured):
    from mmengine.analysis import parameter_count

    network, scope = get_flops.build_model(osp.join(REPO, model.config))
    network.eval()
    result.parameters = parameter_count(network)['']
    if not with_flops:
        result.notes.append(f'FLOPs not counted (pass --{model.task}-flops: {model.flops_shape[0]}x'
                            f'{model.flops_shape[1]} inputs are slow on a CPU)')
        return
    with torch.no_grad():
        inputs = get_flops.model_inputs(network, scope, model.flops_shape)
        result.flops = int(get_flops.count_flops(network, inputs).total())


def named_pairs(pairs, option):
    """``MODEL=PATH`` arguments as a dict."""
    parsed = {}
    for pair in pairs or []:
        name, sep, path = pair.partition('=')
        if not sep or not name or not path:
            raise ValueError(f'{option} {pair!r}: write MODEL=PATH (a model name from model-index.yml)')
        parsed[name] = path
    return parsed


def test_checkpoint(model, checkpoint, tta: bool, work_dir: str) -> dict:
    """Run tools/test.py and return the metrics it prints (``name: value`` lines)."""
    command = [sys.executable, osp.join(TOOLS, 'test.py'), osp.join(REPO, model.config), checkpoint,
               '--work-dir', work_dir] + (['--tta'] if tta else [])
    print('running', ' '.join(command), flush=True)
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f'tools/test.py failed for {model.name} ({completed.returncode}):\n'
                           f'{completed.stderr[-3000:]}')
    metrics = {}
    for line in completed.stdout.splitlines():
        match = re.fullmatch(r'([\w/().+-]+): (-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)', line.strip())
        if match:
            metrics[match.group(1)] = float(match.group(2))
    return metrics


def benchmark_throughput(models, results):
    """fp32 inference throughput (batch 128, 224x224, as the paper) from tools/analysis_tools/benchmark.py."""
    script = osp.join(TOOLS, 'analysis_tools', 'benchmark.py')
    reason = None if torch.cuda.is_available() else 'no CUDA device (the paper measured on an A100)'
    reason = reason or (None if osp.isfile(script) else 'tools/analysis_tools/benchmark.py is not installed')
    models = [model for model in models if model.task == 'cls']
    if reason:
        for model in models:
            results[model.name].notes.append(f'throughput not measured: {reason}')
        return
    configs = {osp.join(REPO, model.config): model for model in models}
    with tempfile.TemporaryDirectory() as folder:
        output = osp.join(folder, 'benchmark.json')
        command = [sys.executable, script, '--models', *configs, '--precisions', 'fp32', '--modes', 'inference',
                   '--batch-size', '128', '--resolutions', '224', '--json', output]
        print('running', ' '.join(command), flush=True)
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0 or not osp.isfile(output):
            for model in models:
                results[model.name].notes.append(f'benchmark.py failed: {completed.stderr.strip()[-300:]}')
            return
        with open(output) as file:
            rows = json.load(file)['rows']
    for row in rows:
        if row['model'] in configs and row['mode'] == 'inference' and row['precision'] == 'fp32':
            results[configs[row['model']].name].throughput = float(row['images_per_s'])


def select(models, patterns, tasks):
    chosen = [model for model in models if model.task in tasks]
    if patterns:
        unknown = [pattern for pattern in patterns if not any(fnmatch.fnmatch(m.name, pattern) for m in models)]
        if unknown:
            raise UnknownModelError(f'--models {unknown} match no model of model-index.yml; '
                                    f'known: {", ".join(model.name for model in models)}')
        chosen = [model for model in chosen if any(fnmatch.fnmatch(model.name, pattern) for pattern in patterns)]
    return chosen


def write_report(models, results, out_dir, paper_only):
    os.makedirs(out_dir, exist_ok=True)
    lines = ['# VMamba: paper vs this installation', '']
    if not paper_only:
        lines += ['Relative differences are marked ✓ within 1%; published counts that are exact integers '
                  'must match exactly. `–`: not published or not measured.', '']
    for task, title in TASK_TITLES.items():
        selected = [model for model in models if model.task == task]
        if not selected:
            continue
        lines += [f'## {title}', '']
        lines += [paper_table(selected) if paper_only else comparison_table(selected, results), '']
        notes = {}  # note -> the models it applies to
        for model in selected:
            for note in results[model.name].notes:
                notes.setdefault(note, []).append(f'`{model.name}`')
        lines += [f'- {note}: {", ".join(names)}' for note, names in notes.items()] + ([''] if notes else [])
    report = osp.join(out_dir, 'report.md')
    figure = None if paper_only else ratio_figure(models, results)
    if figure is not None:
        figures.save(figure, osp.join(out_dir, 'report.png'))
        lines += ['![measured vs paper](report.png)', '']
    with open(report, 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines))
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Set the paper\'s numbers beside this installation\'s.')
    parser.add_argument('--models', nargs='+', metavar='NAME', help='model names or shell patterns '
                        '(default: every model of the selected tasks)')
    parser.add_argument('--tasks', nargs='+', choices=('cls', 'det', 'seg'), default=('cls', 'det', 'seg'))
    parser.add_argument('--det-flops', action='store_true', help='count detection FLOPs at 1280x800 (slow on CPU)')
    parser.add_argument('--seg-flops', action='store_true', help='count segmentation FLOPs at 512x2048 (slow on CPU)')
    parser.add_argument('--no-params', action='store_true', help='do not build the models (metrics only)')
    parser.add_argument('--logs', nargs='+', metavar='MODEL=LOG', help='json logs of tools/test.py runs')
    parser.add_argument('--tta-logs', nargs='+', metavar='MODEL=LOG',
                        help='json logs of tools/test.py --tta runs (segmentation mIoU(ms+flip))')
    parser.add_argument('--checkpoints', nargs='+', metavar='MODEL=CKPT', help='checkpoints to test with tools/test.py')
    parser.add_argument('--tta', action='store_true', help='with --checkpoints: also run the multi-scale + flip '
                        'test for segmentation models')
    parser.add_argument('--throughput', action='store_true', help='measure fp32 inference throughput of the '
                        'classifiers (batch 128, 224x224) with tools/analysis_tools/benchmark.py (GPU)')
    parser.add_argument('--paper-only', action='store_true', help='write the published tables only (measure nothing)')
    parser.add_argument('--model-index', default=osp.join(REPO, 'model-index.yml'))
    parser.add_argument('--out-dir', default='reproduce', help='where report.md and report.png go')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    models = select(load_model_index(args.model_index), args.models, args.tasks)
    if not models:
        raise UnknownModelError(f'no model of tasks {list(args.tasks)} matches --models {args.models}')
    results = {model.name: Measured() for model in models}
    by_name = {model.name: model for model in models}
    logs, tta_logs = named_pairs(args.logs, '--logs'), named_pairs(args.tta_logs, '--tta-logs')
    checkpoints = named_pairs(args.checkpoints, '--checkpoints')
    for name in [*logs, *tta_logs, *checkpoints]:
        if name not in by_name:
            raise UnknownModelError(f'{name} is not among the selected models: {", ".join(by_name)}')

    if not args.paper_only:
        if not args.no_params:
            get_flops = load_get_flops()
            for model in models:
                print(f'counting {model.name}', flush=True)
                with_flops = model.task == 'cls' or getattr(args, f'{model.task}_flops')  # 224x224 is cheap
                count(get_flops, model, with_flops, results[model.name])
        for table, tta in ((logs, False), (tta_logs, True)):
            for name, path in table.items():
                metrics = paper_metrics(by_name[name].task, last_metrics(read_json_log(path)), tta)
                if not metrics:
                    raise ValueError(f'{path} holds no {by_name[name].task} test metric')
                results[name].metrics.update(metrics)
        for name, checkpoint in checkpoints.items():
            model = by_name[name]
            with tempfile.TemporaryDirectory() as work_dir:
                results[name].metrics.update(paper_metrics(model.task, test_checkpoint(model, checkpoint, False,
                                                                                       work_dir)))
                if args.tta and model.task == 'seg':
                    results[name].metrics.update(
                        paper_metrics(model.task, test_checkpoint(model, checkpoint, True, work_dir), tta=True))
        if args.throughput:
            benchmark_throughput(models, results)
    print(f'report written to {write_report(models, results, args.out_dir, args.paper_only)}')


if __name__ == '__main__':
    sys.exit(main())
