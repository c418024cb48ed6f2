"""Checkpoints survive a kill at any moment: AtomicCheckpointHook writes all or nothing, and says which
checkpoint is intact when a save fails."""
import pytest
import torch
from toy_training import build_runner, run_killed_during_save

from vmamba_mm import launch, loading
from vmamba_mm.engine.hooks import STAGING_SUFFIX


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']['w']


def test_atomic_hook_keeps_the_latest_checkpoints_and_points_to_the_newest(tmp_path):
    stale = tmp_path / f'.iter_9.pth{STAGING_SUFFIX}'  # left by a save that was killed
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(b'half a checkpoint')
    runner = build_runner(tmp_path, [1.0, 2.0, 3.0, 4.0],
                          checkpoint=dict(type='AtomicCheckpointHook', interval=1, by_epoch=False, max_keep_ckpts=2))
    runner.train()

    assert sorted(path.name for path in tmp_path.glob('*.pth')) == ['iter_3.pth', 'iter_4.pth']
    assert list(tmp_path.glob(f'.*{STAGING_SUFFIX}')) == []
    assert launch.latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    # SGD(lr=0.1) on loss = value * w.sum(): w = 1 - 0.1 * (sum of the values so far)
    torch.testing.assert_close(_weights(tmp_path / 'iter_3.pth'), torch.full((3, ), 1 - 0.1 * 6))
    torch.testing.assert_close(_weights(tmp_path / 'iter_4.pth'), torch.full((3, ), 1 - 0.1 * 10))
    assert loading.read_checkpoint(str(tmp_path / 'iter_4.pth'))['message_hub']['runtime_info']['keep_ckpt_ids'] == [3, 4]


@pytest.mark.parametrize('hook_type', ['AtomicCheckpointHook', 'CheckpointHook'])
def test_kill_during_save(tmp_path, hook_type):
    """SIGKILL half-way through writing the 2nd checkpoint (max_keep_ckpts=1)."""
    result = run_killed_during_save(tmp_path, hook_type, 2)
    assert result.returncode == -9, result.stderr[-2000:]
    latest = launch.latest_checkpoint(str(tmp_path))
    assert latest == str(tmp_path / 'iter_1.pth')
    if hook_type == 'CheckpointHook':
        # mmengine's own hook removed iter_1 before writing iter_2 in place: nothing left to resume from.
        assert not (tmp_path / 'iter_1.pth').exists()
        with pytest.raises(loading.CheckpointError, match='iter_2.pth cannot be read'):
            loading.read_checkpoint(str(tmp_path / 'iter_2.pth'))
        return
    torch.testing.assert_close(_weights(latest), torch.full((3, ), 1 - 0.1 * 1))
    assert not (tmp_path / 'iter_2.pth').exists()
    assert (tmp_path / f'.iter_2.pth{STAGING_SUFFIX}').exists()


def test_a_full_disk_during_a_save_names_the_checkpoint_that_is_intact(tmp_path, monkeypatch):
    from mmengine.fileio import LocalBackend

    from vmamba_mm.engine.hooks import CheckpointSaveError

    put, writes = LocalBackend.put, []

    def put_until_the_disk_is_full(self, obj, filepath):
        writes.append(filepath)
        if len(writes) == 1:
            return put(self, obj, filepath)
        with open(filepath, 'wb') as file:
            file.write(obj[:100])
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(LocalBackend, 'put', put_until_the_disk_is_full)
    runner = build_runner(tmp_path, [1.0, 2.0, 3.0],
                          checkpoint=dict(type='AtomicCheckpointHook', interval=1, by_epoch=False, max_keep_ckpts=1))
    with pytest.raises(CheckpointSaveError) as error:
        runner.train()
    assert str(error.value) == (
        f'checkpoint {tmp_path / "iter_2.pth"} could not be saved (No space left on device); last_checkpoint still '
        f'names {tmp_path / "iter_1.pth"}, which is intact. Free space in {tmp_path} and continue with --resume')
    assert [path.name for path in tmp_path.glob('*.pth')] == ['iter_1.pth']
    assert list(tmp_path.glob('.*')) == []  # the partial file was removed
    assert launch.latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_1.pth')
    torch.testing.assert_close(_weights(tmp_path / 'iter_1.pth'), torch.full((3, ), 0.9))
