"""vmamba_mm.launch: what the training and test tools share beyond config checks (those are in tests/reliability)."""
import pytest
import torch.distributed as dist

from vmamba_mm import launch


@pytest.fixture
def one_process_group(tmp_path):
    def start():
        dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    yield start
    if dist.is_initialized():
        dist.destroy_process_group()


def test_a_finished_run_leaves_no_process_group(one_process_group):
    with launch.process_group_closed():
        one_process_group()
        assert dist.is_initialized()
    assert not dist.is_initialized()


def test_a_failed_run_leaves_no_process_group(one_process_group):
    with pytest.raises(SystemExit), launch.process_group_closed():
        one_process_group()
        raise SystemExit('the run failed')
    assert not dist.is_initialized()


def test_a_run_without_a_process_group_is_left_alone():
    with launch.process_group_closed():
        pass
    assert not dist.is_initialized()
