"""The throughput benchmark's logic on tiny models (CPU); real numbers come from GPU runs, not tests."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import kernels
from tool_runner import load_tool

benchmark = load_tool('analysis_tools/benchmark.py')

TINY = "vmamba-{'dims': 8, 'depths': (1, 1, 1, 1), 'ssm_ratio': 1.0, 'd_state': 1}"
QUICK = ['--batch-size', '2', '--warmup', '1', '--repeats', '2', '--device', 'cpu']


def test_every_combination_is_measured_and_written(tmp_path):
    rows = benchmark.main([
        '--models', TINY, '--resolutions', '32', '64', '--precisions', 'fp32', 'bf16', '--json',
        str(tmp_path / 'bench.json'), '--plot', str(tmp_path / 'bench.png'), *QUICK
    ])
    combos = {(row['resolution'], row['precision'], row['mode']) for row in rows}
    assert combos == {(r, p, m) for r in (32, 64) for p in ('fp32', 'bf16') for m in ('inference', 'train')}
    assert all(row['images_per_s'] > 0 and row['peak_memory_gb'] is None for row in rows)

    written = json.loads((tmp_path / 'bench.json').read_text())
    assert written['environment']['torch'] and len(written['rows']) == len(rows)
    image = np.asarray(Image.open(tmp_path / 'bench.png').convert('L'))
    assert image.shape == (400, 1000) and image.std() > 5


def test_training_step_computes_gradients_and_clears_them():
    model = benchmark.build_model(TINY, kernel_backend=None)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    seen = []
    model.head.weight.register_hook(lambda grad: seen.append(grad.abs().sum().item()))
    benchmark.make_step(model, 'train', images, labels, dtype=None)()
    assert seen and seen[0] > 0
    assert model.head.weight.grad is None


def test_pixel_scaling_is_relative_to_the_smallest_resolution():
    rows = [dict(model='m', precision='fp32', mode='train', resolution=r, images_per_s=ips)
            for r, ips in ((224, 1000.0), (448, 250.0), (896, 50.0))]
    (key, points), = benchmark.scaling(rows).items()
    assert key == ('m', 'fp32', 'train')
    assert points == [(224, 1.0), (448, 1.0), (896, pytest.approx(0.8))]


def test_requested_backend_that_cannot_run_is_refused(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '0')  # the suite runs Triton interpreted on CPUs; users do not
    with pytest.raises(kernels.BackendUnavailableError, match='triton'):
        benchmark.main(['--models', TINY, '--resolutions', '32', '--precisions', 'fp32', '--modes', 'inference',
                        '--kernel-backend', 'triton', *QUICK])
    assert kernels.get_backend() == 'torch'  # the global choice is restored


def test_drop_path_rate_reaches_the_vmamba_blocks(monkeypatch):
    built = []
    build = benchmark.build_model
    monkeypatch.setattr(benchmark, 'build_model', lambda *args: built.append(build(*args)) or built[-1])
    benchmark.main(['--models', TINY, '--resolutions', '32', '--precisions', 'fp32', '--modes', 'train',
                    '--drop-path-rate', '0.3', *QUICK])
    (model, ) = built
    rates = [getattr(block.drop_path, 'p', 0.0) for stage in model.backbone.stages for block in stage.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert benchmark.parse_args(['--device', 'cpu']).drop_path_rate == 0.0


def test_a_classification_config_is_measured_as_its_model(tmp_path):
    """The config's model comes from vmamba_mm.analysis (the analysis tools' builder), called as images -> logits."""
    from tool_runner import REPO

    torch.manual_seed(0)
    model = benchmark.build_model(str(REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'), None)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model.eval()(images)
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, model.classifier(images, mode='tensor'))
    rows = benchmark.main(['--models', str(REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'),
                           '--resolutions', '32', '--precisions', 'fp32', *QUICK])
    assert {row['mode'] for row in rows} == {'inference', 'train'} and all(row['images_per_s'] > 0 for row in rows)


def test_the_measuring_tools_share_the_package_code_without_sys_path():
    import ast

    from tool_runner import REPO, load_tool
    from vmamba_mm.analysis import measured_models

    saved_activations = load_tool('analysis_tools/saved_activations.py')
    for tool in (benchmark, saved_activations):
        assert tool.build_model is measured_models.build_model
        assert tool.fallback_is_an_error is measured_models.fallback_is_an_error
    for script in ('benchmark.py', 'saved_activations.py'):
        tree = ast.parse((REPO / 'tools' / 'analysis_tools' / script).read_text())
        assert not [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == 'path'
                    and isinstance(node.value, ast.Name) and node.value.id == 'sys'], script


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        benchmark.build_model('resnet50', kernel_backend=None)


def test_official_models_need_a_checkout_with_its_dependencies(tmp_path, monkeypatch):
    monkeypatch.delenv('VMAMBA_OFFICIAL_SRC', raising=False)
    with pytest.raises(ValueError, match='needs VMAMBA_OFFICIAL_SRC'):
        benchmark.build_model('official:vmamba_tiny_s1l8', kernel_backend=None)

    monkeypatch.setenv('VMAMBA_OFFICIAL_SRC', str(tmp_path))
    with pytest.raises(ValueError, match='no classification/models/vmamba.py'):
        benchmark.build_model('official:vmamba_tiny_s1l8', kernel_backend=None)

    models_dir = tmp_path / 'classification' / 'models'
    models_dir.mkdir(parents=True)
    (models_dir / 'vmamba.py').write_text('import flop_counter_not_installed\n')
    with pytest.raises(ModuleNotFoundError, match="imports 'flop_counter_not_installed'.*pip install"):
        benchmark.build_model('official:vmamba_tiny_s1l8', kernel_backend=None)

    (models_dir / 'vmamba.py').write_text('import torch\n\ndef vmamba_tiny_s1l8():\n    return torch.nn.Identity()\n')
    assert isinstance(benchmark.build_model('official:vmamba_tiny_s1l8', kernel_backend=None), torch.nn.Identity)
    with pytest.raises(ValueError, match="no model function 'vmamba_huge'"):
        benchmark.build_model('official:vmamba_huge', kernel_backend=None)


def test_profile_lists_the_busiest_operators_of_one_step():
    model = benchmark.build_model(TINY, kernel_backend=None)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    step = benchmark.make_step(model, 'train', images, labels, dtype=None)
    report = benchmark.kernel_breakdown(step, torch.device('cpu'), top=5).splitlines()
    assert report[0].startswith('#   step:') and len(report) == 6
    shares = [float(line.split('%')[0].split()[-1]) for line in report[1:]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.1


def test_compile_takes_an_optional_mode_and_refuses_unknown_ones(capsys):
    assert benchmark.parse_args(['--device', 'cpu']).compile is None
    assert benchmark.parse_args(['--compile', '--device', 'cpu']).compile == 'default'
    assert benchmark.parse_args(['--compile', 'reduce-overhead', '--device', 'cpu']).compile == 'reduce-overhead'
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--compile', 'fastest', '--device', 'cpu'])
    assert "invalid choice: 'fastest'" in capsys.readouterr().err


def test_compiled_vmamba_models_are_measured_under_vmamba_compile_settings(monkeypatch, capsys):
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    defaults = inductor_config.layout_optimization, functorch_config.activation_memory_budget
    seen = []

    def measure(*args):  # inductor compiles a model on its first call, which happens in here
        seen.append((inductor_config.layout_optimization, functorch_config.activation_memory_budget))
        return 1.0, None

    monkeypatch.setattr(benchmark, 'measure', measure)
    build_vmamba = benchmark.build_model
    monkeypatch.setattr(benchmark, 'build_model', lambda spec, *args: (
        torch.nn.Linear(1, 1) if spec.startswith('timm:') else build_vmamba(spec, *args)))
    compiled_with = []
    monkeypatch.setattr(torch, 'compile', lambda model, **options: compiled_with.append(options) or model)
    options = ['--precisions', 'fp32', '--modes', 'inference', '--resolutions', '32', *QUICK]
    benchmark.main(['--models', TINY, 'timm:convnext_tiny', '--compile', *options])
    compiled_output = capsys.readouterr().out
    benchmark.main(['--models', TINY, *options])
    assert seen == [(False, 0.7), defaults, defaults]
    assert compiled_with == [dict(mode='default', dynamic=False)] * 2  # one graph per model and resolution
    stated = 'VMamba compiled with layout_optimization=False, activation_memory_budget=0.7'
    assert stated in compiled_output and stated not in capsys.readouterr().out
    assert (inductor_config.layout_optimization, functorch_config.activation_memory_budget) == defaults
