"""tools/train.py and tools/test.py: arguments, clear errors on bad input, and real runs on the digits demo."""
import json
import re
import textwrap

import pytest
import torch
from tool_runner import REPO, load_module, load_tool, run_tool

from vmamba_mm import loading
from vmamba_mm.compat import trusted_checkpoint_globals

train_tool = load_tool('train.py')
test_tool = load_tool('test.py')
# The official key layout, stated independently of vmamba_mm.converters (the converter tests' helper).
official_layout = load_module(REPO / 'tests' / 'converters' / 'official_layout.py')

DEMO = REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'


def _write_config(folder, text, name='config.py'):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _snapshot(folder):
    return {path: path.read_bytes() for path in folder.rglob('*') if path.is_file()}


def _fake_run(work_dir):
    """A work dir as a finished mmengine run leaves it: a checkpoint and `last_checkpoint` naming it."""
    work_dir.mkdir(parents=True)
    torch.save({'state_dict': {}, 'meta': {}, 'optimizer': {}, 'message_hub': {}}, work_dir / 'epoch_1.pth')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_1.pth'))


@pytest.fixture(autouse=True)
def in_digits_project(digits_project, monkeypatch):
    """Run from a project folder whose data/digits holds the demo data, as a user of the demo does."""
    monkeypatch.chdir(digits_project)


# --- arguments ---------------------------------------------------------------------------------


def test_train_arguments():
    args = train_tool.parse_args([str(DEMO)])
    assert (args.resume, args.amp, args.auto_scale_lr, args.launcher, args.work_dir) == (None, False, False,
                                                                                        'none', None)
    assert train_tool.parse_args([str(DEMO), '--resume']).resume == 'auto'
    assert train_tool.parse_args([str(DEMO), '--resume', 'a.pth', '--amp']).resume == 'a.pth'
    args = train_tool.parse_args([str(DEMO), '--cfg-options', 'train_cfg.max_epochs=3', 'randomness.seed=5'])
    assert args.cfg_options == {'train_cfg.max_epochs': 3, 'randomness.seed': 5}


def test_default_work_dir_is_named_after_the_config(digits_project):
    cfg = train_tool.build_config(train_tool.parse_args([str(DEMO)]))
    assert cfg.work_dir == 'work_dirs/vmamba-demo_digits'
    assert (digits_project / 'work_dirs' / 'vmamba-demo_digits').is_dir()


def test_train_options_reach_the_config(tmp_path):
    args = train_tool.parse_args([str(DEMO), '--work-dir', str(tmp_path), '--amp', '--auto-scale-lr',
                                  '--cfg-options', 'train_cfg.max_epochs=3'])
    cfg = train_tool.build_config(args)
    assert cfg.train_cfg.max_epochs == 3
    assert cfg.auto_scale_lr == {'base_batch_size': 64, 'enable': True}
    assert (cfg.resume, cfg.load_from) == (False, None)
    # No GPU here: --amp runs bfloat16 autocast on the CPU instead of the CUDA-only AmpOptimWrapper.
    assert cfg.optim_wrapper.type == 'CPUAutocastOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'
    assert 'loss_scale' not in cfg.optim_wrapper
    from mmengine.optim import build_optim_wrapper

    layer = torch.nn.Linear(4, 2)
    optim_wrapper = build_optim_wrapper(layer, cfg.optim_wrapper)
    with optim_wrapper.optim_context(layer):
        output = layer(torch.randn(3, 4))
    assert output.dtype == torch.bfloat16
    weight = layer.weight.detach().clone()
    optim_wrapper.update_params(output.float().square().sum())
    assert layer.weight.dtype == torch.float32 and not torch.equal(layer.weight, weight)


def test_tta_wraps_the_model_and_swaps_the_test_pipeline(tmp_path):
    config = _write_config(tmp_path, f'''
        _base_ = ['{DEMO}']
        tta_model = dict(type='AverageClsScoreTTA')
        tta_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='TestTimeAug', transforms=[[dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)],
                                                 [dict(type='PackInputs')]]),
        ]
        ''')
    checkpoint = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {}, 'meta': {}}, checkpoint)
    plain = test_tool.build_config(test_tool.parse_args([str(config), str(checkpoint), '--work-dir', str(tmp_path)]))
    cfg = test_tool.build_config(test_tool.parse_args([str(config), str(checkpoint), '--work-dir', str(tmp_path),
                                                       '--tta']))
    assert cfg.model.type == 'AverageClsScoreTTA' and cfg.model.module == plain.model
    assert cfg.test_dataloader.dataset.pipeline == plain.tta_pipeline
    assert plain.test_dataloader.dataset.pipeline != plain.tta_pipeline


def test_resume_picks_the_latest_checkpoint_of_the_work_dir(tmp_path):
    _fake_run(tmp_path / 'run')
    cfg = train_tool.build_config(train_tool.parse_args([str(DEMO), '--work-dir', str(tmp_path / 'run'), '--resume']))
    assert (cfg.resume, cfg.load_from) == (True, str(tmp_path / 'run' / 'epoch_1.pth'))


def _demo_weights():
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(DEMO)
    torch.manual_seed(0)
    return MODELS.build(cfg.model).state_dict()


def test_official_checkpoint_is_loaded_and_converted_by_the_runner(tmp_path):
    from mmpretrain.registry import MODELS

    from vmamba_mm.engine import StrictRunner

    weights = _demo_weights()
    official = tmp_path / 'vssm_ckpt_epoch_1.pth'
    torch.save({'model': official_layout.to_official(weights), 'epoch': 1}, official)
    cfg = test_tool.build_config(test_tool.parse_args([str(DEMO), str(official), '--work-dir', str(tmp_path / 'run')]))

    assert cfg.load_from == str(official)
    runner = StrictRunner.__new__(StrictRunner)  # only its checkpoint conversion is used here
    runner.cfg, runner.model = cfg, MODELS.build(cfg.model)
    converted = runner._as_mm_checkpoint(loading.read_checkpoint(str(official)), str(official))['state_dict']
    assert converted.keys() == weights.keys()
    assert all(torch.equal(converted[key], value) for key, value in weights.items())
    # One set of weights: the EMA hook, which would evaluate them twice, is off.
    assert not [hook for hook in cfg.custom_hooks if hook['type'] == 'EMAHook']


def test_mm_checkpoint_is_used_as_it_is(tmp_path):
    checkpoint = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': _demo_weights(), 'meta': {}}, checkpoint)
    args = test_tool.parse_args([str(DEMO), str(checkpoint), '--work-dir', str(tmp_path / 'run')])
    cfg = test_tool.build_config(args)
    assert cfg.load_from == str(checkpoint) and cfg.resume is False
    assert 'EMAHook' in [hook['type'] for hook in cfg.custom_hooks]
    assert list((tmp_path / 'run').iterdir()) == []


# --- bad input: a clear error naming what to fix, and nothing touched ---------------------------


def _exit_message(tool, argv):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(argv)
    return str(exit_info.value.code)


def test_missing_config_from_the_command_line(tmp_path):
    result = run_tool('train.py', tmp_path / 'nope.py', cwd=tmp_path)
    assert result.returncode != 0
    assert f'FileNotFoundError: config file {tmp_path / "nope.py"} does not exist' in result.stderr
    assert not (tmp_path / 'work_dirs').exists()


def test_wrong_config_type(tmp_path):
    notes = tmp_path / 'notes.txt'
    notes.write_text('lr=1e-3')
    assert _exit_message(train_tool, [str(notes)]) == (
        f"ConfigFileError: config file {notes}: vmamba_mm configs are Python files (.py), got '.txt'")
    # The official repository's yacs configs are YAML too, but not mmengine configs.
    official = _write_config(tmp_path, '''
        MODEL:
          TYPE: vssm
          NAME: vssm1_tiny_0230s
          VSSM:
            EMBED_DIM: 96
            DEPTHS: [ 2, 2, 8, 2 ]
        ''', name='vmambav2v_tiny_224.yaml')
    text = _exit_message(test_tool, [str(official), 'ckpt.pth', '--work-dir', str(tmp_path / 'run')])
    assert text.startswith(f'ConfigFileError: {official} is an official VMamba (yacs) config; use the matching '
                           'configs/classification/vmamba-*.py')
    assert not (tmp_path / 'run').exists()


def test_config_that_cannot_merge_with_its_base(tmp_path):
    tiny = REPO / 'configs' / 'classification' / 'vmamba-tiny_8xb128-300e_in1k.py'
    # `arch` is the name 'tiny' in the base; a dict replacing it needs _delete_=True.
    config = _write_config(tmp_path, f'''
        _base_ = ['{tiny}']
        model = dict(backbone=dict(arch=dict(dims=8, depths=(1, 1, 1, 1))))
        ''')
    text = _exit_message(train_tool, [str(config), '--work-dir', str(tmp_path / 'run')])
    assert text.startswith(f'ConfigFileError: config file {config}: arch=') and 'You may set `_delete_=True`' in text
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('scope_line, message', [
    ('', 'sets no default_scope; set it to one of mmpretrain, mmdet, mmseg'),
    ("default_scope = 'mmocr'", "has default_scope='mmocr'; vmamba_mm drives mmpretrain, mmdet, mmseg"),
])
def test_config_scope_errors(tmp_path, scope_line, message):
    config = _write_config(tmp_path, f'model = dict(type="ImageClassifier")\n{scope_line}\n')
    for tool, argv in ((train_tool, [str(config)]), (test_tool, [str(config), 'x.pth'])):
        text = _exit_message(tool, argv + ['--work-dir', str(tmp_path / 'run')])
        assert text.startswith('ConfigScopeError: ') and message in text and str(config) in text
    assert not (tmp_path / 'run').exists()


def test_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/digits here
    for tool, argv in ((train_tool, [str(DEMO)]), (test_tool, [str(DEMO), 'epoch_1.pth'])):
        text = _exit_message(tool, argv + ['--work-dir', str(tmp_path / 'run')])
        assert text.startswith('DatasetNotFoundError: ') and 'data/digits' in text
        assert 'make_digits_demo.py' in text  # the expected layout and how to get it
    assert not (tmp_path / 'run').exists()


def test_missing_checkpoint(tmp_path):
    text = _exit_message(test_tool, [str(DEMO), str(tmp_path / 'epoch_9.pth'), '--work-dir', str(tmp_path / 'run')])
    assert text == f'FileNotFoundError: checkpoint {tmp_path / "epoch_9.pth"} does not exist'
    text = _exit_message(train_tool, [str(DEMO), '--resume', str(tmp_path / 'epoch_9.pth'),
                                      '--work-dir', str(tmp_path / 'run')])
    assert text == f'FileNotFoundError: checkpoint {tmp_path / "epoch_9.pth"} does not exist'
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('content', [b'', b'PK\x03\x04 truncated zip', b'not a checkpoint at all'])
def test_corrupt_checkpoint_is_named(tmp_path, content):
    broken = tmp_path / 'epoch_3.pth'
    broken.write_bytes(content)
    for tool, argv in ((test_tool, [str(DEMO), str(broken)]), (train_tool, [str(DEMO), '--resume', str(broken)])):
        text = _exit_message(tool, argv + ['--work-dir', str(tmp_path / 'run')])
        assert text.startswith(f'CheckpointError: checkpoint {broken} cannot be read (truncated or corrupt?)')
    assert broken.read_bytes() == content


def test_checkpoint_without_weights(tmp_path):
    odd = tmp_path / 'odd.pth'
    torch.save({'weights': {}}, odd)
    text = _exit_message(test_tool, [str(DEMO), str(odd), '--work-dir', str(tmp_path / 'run')])
    assert text.startswith(
        f"CheckpointError: checkpoint {odd} has neither 'state_dict' (mmengine) nor official VMamba weights")


def test_work_dir_that_cannot_be_written(tmp_path):
    blocker = tmp_path / 'results'
    blocker.write_text('a file where the work dir should go')
    text = _exit_message(train_tool, [str(DEMO), '--work-dir', str(blocker / 'run')])
    assert text.startswith(f'WorkDirError: work dir {blocker / "run"} is not writable')
    assert blocker.read_text() == 'a file where the work dir should go'


def test_fresh_run_refuses_to_overwrite_a_previous_one(tmp_path):
    _fake_run(tmp_path / 'run')
    before = _snapshot(tmp_path / 'run')
    text = _exit_message(train_tool, [str(DEMO), '--work-dir', str(tmp_path / 'run')])
    assert text.startswith(f'WorkDirError: work dir {tmp_path / "run"} already holds a run')
    assert 'pass --resume' in text
    assert _snapshot(tmp_path / 'run') == before


def test_distributed_launcher_outside_a_job(tmp_path, monkeypatch):
    for variable in ('SLURM_PROCID', 'RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(variable, raising=False)
    text = _exit_message(train_tool, [str(DEMO), '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'run')])
    assert text.startswith('LauncherEnvironmentError: --launcher pytorch: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT '
                           'not set')


def test_bad_test_options(tmp_path):
    checkpoint = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {}, 'meta': {}}, checkpoint)
    common = [str(DEMO), str(checkpoint), '--work-dir', str(tmp_path / 'run')]
    assert _exit_message(test_tool, common + ['--out', 'preds.json']) == (
        'ValueError: --out preds.json: predictions are written as a pickle, name it *.pkl')
    assert _exit_message(test_tool, common + ['--tta']) == (
        f'ValueError: --tta needs tta_model and tta_pipeline in {DEMO}')
    assert not (tmp_path / 'run').exists()


def test_auto_scale_lr_needs_a_base_batch_size(tmp_path):
    config = _write_config(tmp_path, f'''
        _base_ = ['{DEMO}']
        auto_scale_lr = dict(_delete_=True, enable=False)
        ''')
    text = _exit_message(train_tool, [str(config), '--auto-scale-lr', '--work-dir', str(tmp_path / 'run')])
    assert text == f'ValueError: --auto-scale-lr needs auto_scale_lr.base_batch_size in {config}, ' \
        'the total batch size its learning rate was set for'
    assert not (tmp_path / 'run').exists()


# --- real runs on the digits demo ---------------------------------------------------------------


def _metrics(output):
    return {name: float(value) for name, value in re.findall(r'^(accuracy/\S+): ([\d.]+)$', output, re.M)}


def _last_val_metrics(work_dir):
    scalars = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1].read_text().splitlines()
    return [json.loads(line) for line in scalars if 'accuracy/top1' in line][-1]


def _load(path):
    with trusted_checkpoint_globals():
        return torch.load(path, map_location='cpu')


@pytest.mark.slow
def test_demo_trains_and_test_reports_its_accuracy(digits_project):
    work_dir = digits_project / 'work_dirs' / 'demo'
    train = run_tool('train.py', DEMO, '--work-dir', work_dir, cwd=digits_project)
    assert train.returncode == 0, train.stderr[-3000:]
    final_val = _last_val_metrics(work_dir)
    assert final_val['step'] == 12

    checkpoint = work_dir / 'epoch_12.pth'
    saved = _load(checkpoint)
    # The EMA hook saves both weight sets (EMA under state_dict, the raw ones under ema_state_dict).
    ema_weights, raw_weights = saved['state_dict'], saved['ema_state_dict']
    name = 'head.fc.weight'
    assert not torch.equal(ema_weights[name], raw_weights[f'module.{name}'])

    test = run_tool('test.py', DEMO, checkpoint, '--work-dir', work_dir / 'test', '--out', work_dir / 'preds.pkl',
                    cwd=digits_project)
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = _metrics(test.stdout)
    assert metrics['accuracy/top1'] >= 90.0
    assert metrics['accuracy/top1_origin'] >= 85.0
    # test.py on the saved checkpoint reproduces the last validation of training (to the 4 printed
    # decimals), for both weight sets.
    assert metrics['accuracy/top1'] == pytest.approx(final_val['accuracy/top1'], abs=1e-4)
    assert metrics['accuracy/top1_origin'] == pytest.approx(final_val['accuracy/top1_origin'], abs=1e-4)
    manifest = json.loads((digits_project / 'data' / 'digits' / 'manifest.json').read_text())
    assert len(_load_predictions(work_dir / 'preds.pkl')) == manifest['num_val']


@pytest.mark.slow
def test_official_checkpoint_is_converted_and_evaluated(digits_project):
    """The demo's EMA weights, saved in the official layout, score exactly what they scored as mm weights."""
    work_dir = digits_project / 'work_dirs' / 'demo'
    if not (work_dir / 'epoch_12.pth').is_file():
        pytest.skip('needs the checkpoint of test_demo_trains_and_test_reports_its_accuracy')
    ema_weights = _load(work_dir / 'epoch_12.pth')['state_dict']
    official = digits_project / 'vssm_demo_ckpt_epoch_12.pth'
    torch.save({'model': official_layout.to_official(ema_weights), 'epoch': 12}, official)

    test = run_tool('test.py', DEMO, official, '--work-dir', digits_project / 'official_test', cwd=digits_project)
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = _metrics(test.stdout)
    assert metrics == {'accuracy/top1': pytest.approx(_last_val_metrics(work_dir)['accuracy/top1'], abs=1e-4)}


def _load_predictions(path):
    import pickle
    with open(path, 'rb') as f:
        return pickle.load(f)


@pytest.mark.slow
def test_resume_continues_the_same_schedule(digits_project):
    # Deterministic data (no random crop) on 96 images, 3 steps per epoch, a checkpoint every epoch.
    config = _write_config(digits_project, f'''
        _base_ = ['{DEMO}']
        max_epochs = 3
        train_dataloader = dict(batch_size=32, dataset=dict(indices=96, pipeline=[
            dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
        val_dataloader = dict(dataset=dict(indices=32))
        test_dataloader = val_dataloader
        param_scheduler = [
            dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=1, end=max_epochs,
                 convert_to_iter_based=True),
        ]
        train_cfg = dict(max_epochs=max_epochs, val_interval=1)
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=5))
        ''', name='resume_digits.py')
    straight, split = digits_project / 'work_dirs' / 'straight', digits_project / 'work_dirs' / 'split'

    assert run_tool('train.py', config, '--work-dir', straight, cwd=digits_project).returncode == 0
    first = run_tool('train.py', config, '--work-dir', split, '--cfg-options', 'train_cfg.max_epochs=1',
                     cwd=digits_project)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_tool('train.py', config, '--work-dir', split, '--resume', cwd=digits_project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f'Load checkpoint from {split / "epoch_1.pth"}' in log and 'resumed epoch: 1, iter: 3' in log

    expected, actual = _load(straight / 'epoch_3.pth'), _load(split / 'epoch_3.pth')
    assert (actual['meta']['epoch'], actual['meta']['iter']) == (expected['meta']['epoch'], 9)
    for part in ('state_dict', 'ema_state_dict'):  # model and EMA weights
        assert actual[part].keys() == expected[part].keys()
        for key, value in expected[part].items():
            torch.testing.assert_close(actual[part][key], value, rtol=0, atol=0, msg=f'{part}.{key}')
    assert actual['optimizer']['state'][0]['step'] == expected['optimizer']['state'][0]['step'] == 9
    assert actual['param_schedulers'] == expected['param_schedulers']
    assert actual['message_hub']['log_scalars']['train/lr'].current() == \
        expected['message_hub']['log_scalars']['train/lr'].current()


def _tiny_synthetic_config(folder, extra=''):
    """The throughput config with a tiny VMamba at 32², 6 iterations of batch 2 on the CPU."""
    synthetic = REPO / 'configs' / 'classification' / 'vmamba-tiny_synthetic-in1k.py'
    return _write_config(folder, textwrap.dedent(f'''
        _base_ = ['{synthetic}']
        model = dict(backbone=dict(arch=dict(_delete_=True, dims=8, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)),
                     head=dict(in_channels=64))
        train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                                dataset=dict(num_samples=12, image_size=32))
        default_hooks = dict(logger=dict(interval=2))
    ''') + extra)


def test_synthetic_imagenet_config_trains_and_its_log_gives_throughput(tmp_path):
    config = _tiny_synthetic_config(tmp_path)
    work_dir = tmp_path / 'work'
    train = run_tool('train.py', config, '--work-dir', work_dir, cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    assert not list(work_dir.glob('*.pth'))  # a throughput run saves no checkpoint
    (log, ) = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [record['step'] for record in records] == [2, 4, 6] and all('loss' in r for r in records)
    timing = run_tool('analysis_tools/analyze_logs.py', 'cal_train_time', log, '--skip-iters', '2',
                      '--images-per-iter', '2', cwd=tmp_path)
    assert timing.returncode == 0, timing.stderr[-3000:]
    assert re.search(r'over 2 logged iterations\); [\d.]+ images/s', timing.stdout)


@pytest.mark.slow
def test_a_config_asking_for_compile_trains_with_its_model_forward_compiled(tmp_path, monkeypatch):
    config = _tiny_synthetic_config(tmp_path, 'compile = True\n')
    monkeypatch.setenv('TORCH_LOGS', 'dynamo')  # dynamo then logs each frame it traces
    work_dir = tmp_path / 'work'
    train = run_tool('train.py', config, '--work-dir', work_dir, cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    traced = re.findall(r'torchdynamo done tracing (\w+)', train.stderr)
    assert traced and set(traced) == {'forward'}  # not mmengine's train_step with its optimizer step
    assert re.search(r'first training iteration \(compilation included\): [\d.]+ s', train.stdout + train.stderr)
    (log, ) = work_dir.glob('*/vis_data/scalars.json')
    assert [json.loads(line)['step'] for line in log.read_text().splitlines()] == [2, 4, 6]
    assert 'compile = True' in (work_dir / config.name).read_text()  # the run's record keeps the request


def test_a_compile_option_that_is_neither_a_flag_nor_arguments_is_named(tmp_path):
    config = _tiny_synthetic_config(tmp_path, "compile = 'fast'\n")
    assert _exit_message(train_tool, [str(config), '--work-dir', str(tmp_path / 'work')]) == (
        "ValueError: compile must be True, False, 'auto' or a dict of torch.compile arguments, got 'fast'")
