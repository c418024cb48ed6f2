"""mmengine 0.10.7 checkpoints round-trip under torch's weights_only loading, inside the scoped allow-list."""
import pickle

import numpy as np
import pytest
import torch
from torch import nn

mmengine = pytest.importorskip('mmengine')
from mmengine.model import BaseModel  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from vmamba_mm.compat import trusted_checkpoint_globals  # noqa: E402


class TinyRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets, mode='tensor'):
        loss = ((self.linear(inputs).squeeze(-1) - targets)**2).mean()
        return {'loss': loss} if mode == 'loss' else loss


class LineDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('line', ), scale=np.float64(0.5))

    def __len__(self):
        return 8

    def __getitem__(self, index):
        inputs = torch.tensor([index / 8, 1.0])
        return dict(inputs=inputs, targets=inputs[0] * 3 - 1)


def _runner(work_dir, max_epochs, resume):
    torch.manual_seed(0)  # the model is built before the Runner seeds anything
    return Runner(
        model=TinyRegressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=LineDataset(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=4, num_workers=0, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        # end fixed, so the 1-epoch run saves the 3-epoch schedule it was cut out of
        param_scheduler=dict(type='MultiStepLR', milestones=[2], gamma=0.1, end=3),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        resume=resume,
        randomness=dict(seed=0),
        default_scope='mmengine',
        experiment_name=f'run-{max_epochs}-{resume}',
    )


def _final_weights(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_default_torch_load_rejects_mmengine_checkpoint(tmp_path):
    runner = _runner(tmp_path, max_epochs=1, resume=False)
    runner.train()
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        torch.load(tmp_path / 'epoch_1.pth')


def test_resume_continues_the_same_schedule(tmp_path):
    straight = _runner(tmp_path / 'straight', max_epochs=3, resume=False)
    straight.train()

    _runner(tmp_path / 'split', max_epochs=1, resume=False).train()
    with trusted_checkpoint_globals():
        resumed = _runner(tmp_path / 'split', max_epochs=3, resume=True)
        resumed.train()

    assert resumed.epoch == 3
    assert resumed.iter == straight.iter == 6
    for key, value in _final_weights(straight).items():
        torch.testing.assert_close(_final_weights(resumed)[key], value)


def test_allow_list_is_scoped(tmp_path):
    _runner(tmp_path, max_epochs=1, resume=False).train()
    with trusted_checkpoint_globals():
        checkpoint = torch.load(tmp_path / 'epoch_1.pth')
    assert checkpoint['meta']['epoch'] == 1
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'epoch_1.pth')


def test_only_history_buffer_methods_are_served(tmp_path):
    import subprocess
    import sys
    _runner(tmp_path, max_epochs=1, resume=False).train()
    # A fresh process has created no HistoryBuffer yet, as when test.py loads a training checkpoint.
    code = ('import torch, sys; from vmamba_mm.compat import trusted_checkpoint_globals\n'
            'with trusted_checkpoint_globals():\n'
            '    print(torch.load(sys.argv[1])["meta"]["epoch"])\n')
    result = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'epoch_1.pth')],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '1'


@pytest.mark.parametrize('owner_name, name', [('HistoryBuffer', '__init__'), ('HistoryBuffer', '__class__'),
                                              ('ndarray', 'tofile')])
def test_other_getattr_lookups_are_refused(tmp_path, owner_name, name):
    import builtins
    from mmengine.logging import HistoryBuffer

    class Lookup:
        owner = {'HistoryBuffer': HistoryBuffer, 'ndarray': np.ndarray}[owner_name]

        def __reduce__(self):
            return builtins.getattr, (self.owner, name)

    torch.save({'payload': Lookup()}, tmp_path / 'crafted.pth')
    with trusted_checkpoint_globals(), pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(tmp_path / 'crafted.pth')
