"""StrictRunner: checkpoints are data, weights load strictly, a config's compile compiles the forward."""
import copy
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel

from vmamba_mm.engine import StrictRunner, compile_options_of
from vmamba_mm.loading import CheckpointError, IncompatibleCheckpointError
from vmamba_mm.models import VMamba

TINY_ARCH = dict(dims=8, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)


class TwoLayers(BaseModel):
    """loss = (layer2(layer1(x))).sum(); `extra` adds a parameter that other checkpoints lack."""

    def __init__(self, extra=False, init_cfg=None, with_vmamba=False):
        super().__init__(init_cfg=init_cfg)
        self.layer1 = torch.nn.Linear(2, 3)
        self.layer2 = torch.nn.Linear(3, 1)
        if extra:
            self.layer3 = torch.nn.Linear(1, 1)
        if with_vmamba:
            self.backbone = VMamba(arch=TINY_ARCH)

    def forward(self, inputs, data_samples=None, mode='loss'):
        out = self.layer2(self.layer1(inputs))
        return dict(loss=out.sum()) if mode == 'loss' else [out]


def _runner(work_dir, model=None, **kwargs):
    dataset = [dict(inputs=torch.tensor([float(i), 1.0])) for i in range(4)]
    return StrictRunner(
        model=model or TwoLayers(),
        work_dir=str(work_dir),
        experiment_name=f'strict_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=dataset, sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                              collate_fn=dict(type='default_collate'), num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1), logger=None),
        default_scope='mmengine',
        log_level='WARNING',
        **kwargs,
    )


@pytest.fixture
def trained(tmp_path):
    """A finished one-epoch run: (its checkpoint path, its weights)."""
    runner = _runner(tmp_path / 'first')
    runner.train()
    return tmp_path / 'first' / 'epoch_1.pth', copy.deepcopy(runner.model.state_dict())


def test_resume_never_executes_a_config_stored_in_the_checkpoint(trained, tmp_path):
    path, weights = trained
    marker = tmp_path / 'executed'
    checkpoint = torch.load(path, weights_only=False)
    checkpoint['meta']['config'] = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\ngpu_ids = [0, 1]\n"
    evil = tmp_path / 'evil.pth'
    torch.save(checkpoint, evil)
    runner = _runner(tmp_path / 'resumed', load_from=str(evil), resume=True)
    runner.train()  # the epoch is done already: resuming only loads
    assert not marker.exists()
    assert runner.epoch == 1
    for key, value in weights.items():
        assert torch.equal(runner.model.state_dict()[key], value), key


def test_resume_from_a_weights_only_file_says_what_resume_needs(trained, tmp_path):
    path, weights = trained
    torch.save(weights, tmp_path / 'weights.pth')
    runner = _runner(tmp_path / 'resumed', load_from=str(tmp_path / 'weights.pth'), resume=True)
    with pytest.raises(CheckpointError, match=r'not a training checkpoint of tools/train.py \(no meta, optimizer, '
                                              r'message_hub\); to start a new run from its weights, pass '
                                              r'--cfg-options load_from='):
        runner.train()


def test_load_from_refuses_a_checkpoint_that_does_not_fit_before_running(trained, tmp_path):
    path, _ = trained
    runner = _runner(tmp_path / 'wider', model=TwoLayers(extra=True), load_from=str(path))
    before = copy.deepcopy(runner.model.state_dict())
    with pytest.raises(IncompatibleCheckpointError, match=r'missing keys \(2\): layer3.bias, layer3.weight'):
        runner.train()
    for key, value in before.items():  # nothing was loaded
        assert torch.equal(runner.model.state_dict()[key], value), key


@pytest.mark.parametrize('wrapped', [True, False], ids=['state_dict', 'bare'])
def test_load_from_takes_an_mm_or_a_bare_state_dict(trained, tmp_path, wrapped):
    path, weights = trained
    if not wrapped:
        torch.save(weights, tmp_path / 'bare.pth')
        path = tmp_path / 'bare.pth'
    runner = _runner(tmp_path / 'loaded', load_from=str(path),
                     custom_hooks=[dict(type='EMAHook')])  # its after_load_checkpoint reads 'state_dict'
    runner.call_hook('before_run')  # as test() does: the EMA hook makes its averaged copy here
    runner.load_or_resume()
    for key, value in weights.items():
        assert torch.equal(runner.model.state_dict()[key], value), key


def test_a_test_time_augmented_model_loads_its_inner_models_checkpoint(trained, tmp_path):
    from mmengine.model import BaseTTAModel

    class MergeByFirst(BaseTTAModel):

        def merge_preds(self, data_samples_list):
            return [samples[0] for samples in data_samples_list]

    path, weights = trained
    runner = _runner(tmp_path / 'tta', model=MergeByFirst(module=TwoLayers()), load_from=str(path))
    runner.load_or_resume()
    for key, value in weights.items():
        assert torch.equal(runner.model.module.state_dict()[key], value), key


def test_a_model_level_pretrained_init_cfg_is_strict(trained, tmp_path):
    path, weights = trained
    init_cfg = dict(type='Pretrained', checkpoint=str(path))
    with pytest.raises(IncompatibleCheckpointError, match=r'missing keys \(2\): layer3.bias, layer3.weight'):
        _runner(tmp_path / 'wider', model=TwoLayers(extra=True, init_cfg=init_cfg)).train()

    runner = _runner(tmp_path / 'fits', model=TwoLayers(init_cfg=init_cfg))
    runner._init_model_weights()
    for key, value in weights.items():
        assert torch.equal(runner.model.state_dict()[key], value), key


def test_a_model_level_partial_load_is_explicit(trained, tmp_path):
    path, weights = trained
    init_cfg = dict(type='Pretrained', checkpoint=str(path), strict=False)
    runner = _runner(tmp_path / 'wider', model=TwoLayers(extra=True, init_cfg=init_cfg))
    runner._init_model_weights()
    for key, value in weights.items():
        assert torch.equal(runner.model.state_dict()[key], value), key


def _settings():
    import torch._inductor.config as inductor_config
    return inductor_config.layout_optimization


@pytest.mark.parametrize('with_vmamba', [True, False])
def test_a_compiled_run_holds_vmamba_compile_settings(tmp_path, monkeypatch, with_vmamba):
    seen = []
    monkeypatch.setattr(torch, 'compile', lambda function, **options: function)  # compile itself is not under test
    runner = _runner(tmp_path / 'compiled', model=TwoLayers(with_vmamba=with_vmamba), cfg=dict(compile=True))
    default = _settings()
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    monkeypatch.setattr(runner._train_loop, 'run', lambda: seen.append(_settings()))
    runner.train()
    assert runner._forward_compiled
    assert seen == [False if with_vmamba else default]
    assert _settings() == default


@pytest.mark.parametrize('device_type', ['cpu', 'cuda'])
def test_compile_options_come_from_the_config_and_a_bad_one_is_named(device_type):
    assert compile_options_of(Config(dict()), device_type) is None
    assert compile_options_of(Config(dict(compile=False)), device_type) is None
    assert compile_options_of(Config(dict(compile=True)), device_type) == {}
    assert compile_options_of(Config(dict(compile=dict(mode='max-autotune'))), device_type) == {'mode': 'max-autotune'}
    with pytest.raises(ValueError, match="compile must be True, False, 'auto' or a dict of torch.compile arguments, "
                       "got 'fast'"):
        compile_options_of(Config(dict(compile='fast')), device_type)


def test_auto_compile_compiles_on_gpus_only():
    assert compile_options_of(Config(dict(compile='auto')), 'cuda') == {}
    assert compile_options_of(Config(dict(compile='auto')), 'cpu') is None


def test_auto_compile_leaves_a_cpu_run_eager(tmp_path, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, 'compile', lambda function, **options: compiled.append(options) or function)
    runner = _runner(tmp_path / 'auto', model=TwoLayers(with_vmamba=True), cfg=dict(compile='auto'))
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    monkeypatch.setattr(runner._train_loop, 'run', lambda: None)
    runner.train()
    assert not runner._forward_compiled and compiled == []
