"""The real-loop training benchmark on the CPU, with tiny models: it runs each task's config as tools/train.py would,
its breakdown is consistent, and the optimizer, AMP, clipping and EMA that ran are the config's. Real numbers come
from GPU runs (docs/performance.md), never from tests."""
import json
import os
import sys

import pytest
import torch

from tool_runner import REPO, load_tool, run_tool
from vmamba_mm.analysis import train_benchmark

tool = load_tool('analysis_tools/benchmark_train.py')

TINY_ARCH = "dict(_delete_=True, dims=8, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)"
WARMUP, ITERS = 1, 2
PAPER_CONFIGS = {
    'cls': REPO / 'configs/classification/vmamba-tiny_8xb128-300e_in1k.py',
    'det': REPO / 'configs/detection/mask-rcnn_vmamba-tiny_fpn_1x_coco.py',
    'seg': REPO / 'configs/segmentation/upernet_vmamba-tiny_8xb2-160k_ade20k-512x512.py',
}
# The paper configs with a tiny VMamba, narrow heads and small images; everything else (optimizer wrapper, clipping,
# EMA, schedules, hooks, the recipe's augmentations) as the paper configs have it.
TINY_OVERRIDES = {
    'cls': f'''
model = dict(backbone=dict(arch={TINY_ARCH}), head=dict(in_channels=64))
''',
    'det': f'''
model = dict(
    backbone=dict(arch={TINY_ARCH}),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=16), bbox_head=dict(in_channels=16, fc_out_channels=16),
                  mask_roi_extractor=dict(out_channels=16), mask_head=dict(in_channels=16, conv_out_channels=16)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(320, 192), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
''',
    'seg': f'''
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size), backbone=dict(arch={TINY_ARCH}),
             decode_head=dict(in_channels=[8, 16, 32, 64], channels=16),
             auxiliary_head=dict(in_channels=32, channels=16))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
''',
}
# Segmentation runs with --amp: the switch tools/train.py has, on the CPU its bfloat16 wrapper.
EXTRA_ARGS = {'cls': [], 'det': [], 'seg': ['--amp']}


def tiny_config(folder, task):
    path = folder / f'{task}_tiny.py'
    path.write_text(f"_base_ = [{str(PAPER_CONFIGS[task])!r}]\n{TINY_OVERRIDES[task]}")
    return path


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Each task's tiny config through the tool, as a user runs it: {task: (completed process, JSON)}."""
    folder = tmp_path_factory.mktemp('benchmark_train')
    results = {}
    for task in PAPER_CONFIGS:
        out = folder / f'{task}.json'
        process = run_tool('analysis_tools/benchmark_train.py', tiny_config(folder, task), '--iters', ITERS,
                           '--warmup', WARMUP, '--batch-size', 2, '--out', out, *EXTRA_ARGS[task], '--cfg-options',
                           'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False', cwd=folder,
                           timeout=900)
        results[task] = process, json.loads(out.read_text()) if out.is_file() else None
    return results


@pytest.mark.parametrize('task', list(PAPER_CONFIGS))
def test_each_task_runs_and_reports_the_table_and_the_json(runs, task):
    process, report = runs[task]
    assert process.returncode == 0, process.stderr[-3000:]
    (row, ) = report['rows']
    scope = {'cls': 'mmpretrain', 'det': 'mmdet', 'seg': 'mmseg'}[task]
    assert row['task'] == scope and row['model'] == 'vmamba_mm' and row['batch_size'] == 2
    assert row['images_per_s'] > 0 and row['iterations_per_s'] == pytest.approx(row['images_per_s'] / 2)
    assert row['first_iteration_s'] > 0 and row['setup_s'] > 0 and row['peak_memory_gb'] is None  # no GPU here
    assert set(row['breakdown_ms']) == set(train_benchmark.PARTS) == set(report['parts'])
    assert report['environment']['torch'] == torch.__version__
    # the table is what the tool prints last: its header, then this row
    header, line = process.stdout.strip().splitlines()[-2:]
    assert header.split()[:4] == ['task', 'model', 'prec', 'batch'] and header.split()[-1] == 'remainder'
    assert line.split()[:4] == [scope, 'vmamba_mm', row['precision'], '2']


@pytest.mark.parametrize('task', list(PAPER_CONFIGS))
def test_the_breakdown_adds_up_to_no_more_than_the_step(runs, task):
    row = runs[task][1]['rows'][0]
    parts = row['breakdown_ms']
    assert all(value >= 0 for value in parts.values()), parts  # a negative remainder would mean overlapping parts
    measured = sum(value for part, value in parts.items() if part != 'remainder')
    assert measured <= row['step_ms'] * (1 + 1e-6)
    assert measured + parts['remainder'] == pytest.approx(row['step_ms'])
    for part in ('backbone_forward', 'backbone_backward', 'model_rest', 'optimizer', 'preprocess', 'hooks'):
        assert parts[part] > 0, part
    # on the CPU the clock is the wall clock: the step is the iteration's wall time, and the data part is
    # what mmengine's own data_time measures
    assert row['step_ms'] == pytest.approx(row['wall_step_ms'], rel=0.05)
    assert parts['data'] == pytest.approx(row['data_time_mmengine_ms'], rel=0.5, abs=5)


def test_classification_runs_its_recipe_amp_clipping_and_ema(runs):
    row = runs['cls'][1]['rows'][0]
    settings = row['settings']
    # the recipe's AmpOptimWrapper, as tools/train.py runs it without a GPU
    assert settings['optim_wrapper'] == 'CPUAutocastOptimWrapper' and row['precision'] == 'bf16'
    assert settings['optimizer'] == 'AdamW' and settings['param_groups'] > 1  # the no-decay groups
    assert settings['clip_grad'] == {'max_norm': 5.0} and settings['last_grad_norm'] > 0
    (ema, ) = settings['ema']
    assert ema['hook'] == 'EMAHook' and ema['momentum'] == pytest.approx(1e-4)
    assert ema['steps'] == WARMUP + ITERS == settings['iterations_run']
    assert row['breakdown_ms']['ema'] > 0
    assert 'NonFiniteLossHook' in settings['hooks'] and 'LoggerHook' in settings['hooks']


def test_detection_runs_without_clipping_or_ema_as_configured(runs):
    row = runs['det'][1]['rows'][0]
    settings = row['settings']
    assert settings['optim_wrapper'] == 'OptimWrapper' and row['precision'] == 'fp32'
    assert settings['clip_grad'] is None and settings['last_grad_norm'] is None
    assert settings['ema'] == [] and row['breakdown_ms']['ema'] == 0
    assert settings['iterations_run'] == WARMUP + ITERS


def test_segmentation_amp_switch_and_iteration_loop(runs):
    row = runs['seg'][1]['rows'][0]
    assert row['settings']['optim_wrapper'] == 'CPUAutocastOptimWrapper' and row['precision'] == 'bf16'
    assert row['settings']['iterations_run'] == WARMUP + ITERS
    assert row['settings']['cudnn_benchmark'] is True  # mmseg's runtime asks for it


@pytest.mark.parametrize('task', list(PAPER_CONFIGS))
def test_paper_configs_get_synthetic_data_for_exactly_the_benchmark_steps(task):
    from vmamba_mm import launch

    cfg = train_benchmark.benchmark_cfg(launch.load_config(str(PAPER_CONFIGS[task])), iterations=5, warmup=2,
                                        batch_size=3)
    dataset = cfg.train_dataloader.dataset
    expected = {'cls': ('SyntheticImageNet', 1000), 'det': ('SyntheticCocoInstances', 80),
                'seg': ('SyntheticSegmentation', 150)}[task]
    assert (dataset.type, dataset.num_classes) == expected and dataset.num_samples == 7 * 3
    kinds = [transform['type'] for transform in dataset.pipeline]
    assert not any(kind.startswith('Load') for kind in kinds) and kinds[-1].startswith('Pack')
    if task == 'cls':
        assert 'RandAugment' in kinds and 'RandomErasing' in kinds  # the recipe's augmentations still run
    if task == 'seg':
        assert cfg.train_cfg.max_iters == 7
    else:
        assert cfg.train_cfg.max_epochs == 1
    assert cfg.val_cfg is None and cfg.val_dataloader is None and cfg.default_hooks.checkpoint.interval == -1
    assert cfg.model.backbone.get('init_cfg') is None  # nothing to download
    original = launch.load_config(str(PAPER_CONFIGS[task])).optim_wrapper
    for key in ('optimizer', 'clip_grad', 'paramwise_cfg'):
        assert cfg.optim_wrapper.get(key) == original.get(key), key
    # the classification recipe's AmpOptimWrapper becomes tools/train.py's CPU counterpart here
    assert cfg.optim_wrapper.type == {'cls': 'CPUAutocastOptimWrapper'}.get(task, original.type)


def test_compile_switch_overrides_the_config_either_way():
    from vmamba_mm import launch

    load = lambda: launch.load_config(str(PAPER_CONFIGS['seg']))  # noqa: E731
    assert train_benchmark.benchmark_cfg(load(), 1, 1, compile=True).compile is True
    assert train_benchmark.benchmark_cfg(load(), 1, 1, compile=False).compile is False
    assert train_benchmark.benchmark_cfg(load(), 1, 1).get('compile') is None
    compiled = load()
    compiled.compile = dict(mode='max-autotune')
    assert train_benchmark.benchmark_cfg(compiled, 1, 1, compile=True).compile == dict(mode='max-autotune')


class _Net(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8))
        self.head = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.backbone(x))


def test_backbone_probe_times_one_forward_and_one_backward_per_step():
    torch.manual_seed(0)
    net = _Net()
    recorder = train_benchmark.StepRecorder('cpu', warmup=1, iterations=3)
    probe = train_benchmark.BackboneProbe(recorder, net.backbone, net.backbone, net.backbone.parameters())
    recorder.start_run()
    for _ in range(4):
        recorder.data_ready()
        recorder.begin('train_step')
        net(torch.randn(5, 4)).sum().backward()
        recorder.end('train_step')
        net.zero_grad()
        probe.iteration_ended()
        recorder.close_iteration()
    assert probe.expected == 4  # the backbone's weights and biases
    for spans, _ in recorder.spans:
        assert len(spans['backbone_forward']) == len(spans['backbone_backward']) == 1
    summary = recorder.summary(batch_size=5)
    parts = summary['breakdown_ms']
    assert parts['backbone_forward'] > 0 and parts['backbone_backward'] > 0 and parts['remainder'] >= 0
    assert sum(parts.values()) == pytest.approx(summary['step_ms'])
    probe.remove()
    net(torch.randn(1, 4)).sum().backward()
    assert not recorder.is_open('backbone_forward')  # the hooks are gone


def test_a_run_that_ended_early_is_not_summarised():
    recorder = train_benchmark.StepRecorder('cpu', warmup=1, iterations=2)
    recorder.start_run()
    recorder.close_iteration()
    with pytest.raises(RuntimeError, match='after 1 of 3 iterations'):
        recorder.summary(batch_size=1)
    with pytest.raises(ValueError, match='at least one warm-up'):
        train_benchmark.StepRecorder('cpu', warmup=0, iterations=2)


def test_official_detection_backbone_is_swapped_in_with_the_same_arch_and_recipe():
    from mmdet.registry import MODELS

    from vmamba_mm import launch

    class FakeOfficial:

        class Backbone_VSSM(torch.nn.Module):  # noqa: N801 (the official name)

            def __init__(self, **kwargs):
                super().__init__()
                self.kwargs = kwargs

    cfg = launch.load_config(str(PAPER_CONFIGS['det']))
    launch.register_scope(cfg)
    train_benchmark.swap_in_official_backbone(cfg, FakeOfficial)
    backbone = MODELS.build(cfg.model.backbone)
    # the official detection config's backbone (vssm1 tiny), with no checkpoint
    assert backbone.kwargs == dict(
        out_indices=(0, 1, 2, 3), pretrained=None, dims=96, depths=[2, 2, 8, 2], ssm_d_state=1, ssm_ratio=1.0,
        ssm_dt_rank='auto', ssm_conv=3, ssm_conv_bias=False, forward_type='v05_noz', mlp_ratio=4.0,
        downsample_version='v3', patchembed_version='v2', drop_path_rate=0.2, norm_layer='ln2d', use_checkpoint=False)
    assert type(backbone).__name__ == train_benchmark.OFFICIAL_BACKBONE
    with pytest.raises(ValueError, match="config's backbone is 'ResNet'"):
        cfg.model.backbone = dict(type='ResNet', depth=50)
        train_benchmark.swap_in_official_backbone(cfg, FakeOfficial)


def test_official_without_its_source_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv('VMAMBA_OFFICIAL_SRC', raising=False)
    with pytest.raises(SystemExit) as exit:
        tool.main([str(PAPER_CONFIGS['cls']), '--official'])
    message = str(exit.value.code)
    assert 'VMAMBA_OFFICIAL_SRC' in message and 'not set' in message and '\n' not in message
    monkeypatch.setenv('VMAMBA_OFFICIAL_SRC', str(tmp_path))
    with pytest.raises(SystemExit) as exit:
        tool.main([str(PAPER_CONFIGS['det']), '--official'])
    assert 'is not a checkout of the official VMamba repository' in str(exit.value.code)
    assert capsys.readouterr().out == ''  # nothing was measured


def test_command_line_mistakes_are_named(capsys):
    with pytest.raises(SystemExit):
        tool.parse_args([str(PAPER_CONFIGS['cls']), '--iters', '0'])
    assert '--iters must be at least 1, got 0' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        tool.main(['configs/no_such_config.py'])
    assert 'FileNotFoundError' in str(exit.value.code)


def _official_models_dir():
    sys.path.insert(0, str(REPO / 'tests' / 'models'))
    try:
        from official_source import official_models_dir
    finally:
        sys.path.pop(0)
    return official_models_dir()


@pytest.mark.skipif(not os.environ.get('VMAMBA_OFFICIAL_SRC') or _official_models_dir() is None,
                    reason='set VMAMBA_OFFICIAL_SRC to a checkout of the official VMamba repo')
def test_official_classification_loop_and_segmentation_backbone_on_the_cpu(tmp_path):
    pytest.importorskip('timm', reason='the official loop uses timm (Mixup, ModelEma), as the official main.py')
    sys.path.insert(0, str(REPO / 'tests' / 'models'))
    try:
        from official_source import cpu_device_context, import_official_vmamba
    finally:
        sys.path.pop(0)
    module = import_official_vmamba(_official_models_dir())
    options = dict(iterations=ITERS, warmup=WARMUP, batch_size=2,
                   cfg_options={'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False})
    with cpu_device_context():
        row = train_benchmark.benchmark_official_classification(str(tiny_config(tmp_path, 'cls')), module, **options)
        seg = train_benchmark.benchmark_config(str(tiny_config(tmp_path, 'seg')), official=module, **options)
    assert row['model'] == 'official' and row['precision'] == 'bf16' and row['images_per_s'] > 0
    settings = row['settings']
    assert settings['clip_grad'] == {'max_norm': 5.0} and settings['mixup'] and settings['param_groups'] == 2
    assert settings['ema'][0]['decay'] == pytest.approx(1 - 1e-4) and settings['iterations_run'] == WARMUP + ITERS
    assert settings['last_loss'] > 0
    parts = row['breakdown_ms']
    assert all(value >= 0 for value in parts.values()) and parts['backbone_backward'] > 0 and parts['ema'] > 0
    assert seg['model'] == 'official' and seg['breakdown_ms']['backbone_forward'] > 0
