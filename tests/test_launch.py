"""vmamba_mm.launch: what the training and test tools share beyond config checks (those are in tests/reliability)."""
import subprocess
import sys
import textwrap

import pytest
import torch.distributed as dist

from vmamba_mm import launch


@pytest.fixture(autouse=True)
def no_process_group_destroyed_yet(monkeypatch):
    """Each test starts as a fresh tool process does, whatever an earlier test's process group did."""
    monkeypatch.setattr(launch, '_destroyed_process_group', False)


@pytest.fixture
def one_process_group(tmp_path):
    def start():
        dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    yield start
    if dist.is_initialized():
        dist.destroy_process_group()


class ProcessEnded(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


@pytest.fixture
def process_end(monkeypatch):
    """Stands in for os._exit, the interpreter's thread shutdown and its exit handlers, which would end pytest
    itself (or leave it unable to start threads).

    Returns the names of the steps taken, in order, and raises ProcessEnded(status) for os._exit."""
    steps = []

    def exit_process(status):
        steps.append('os._exit')
        raise ProcessEnded(status)

    monkeypatch.setattr(launch.threading, '_shutdown', lambda: steps.append('threads stopped'))
    monkeypatch.setattr(launch.atexit, '_run_exitfuncs', lambda: steps.append('exit handlers'))
    monkeypatch.setattr(launch.os, '_exit', exit_process)
    return steps


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


def test_a_successful_distributed_run_ends_through_os_exit_after_the_exit_handlers(one_process_group, process_end, capsys):
    def main():
        with launch.process_group_closed():
            one_process_group()
            print('accuracy/top1: 98.4375')

    with pytest.raises(ProcessEnded) as ended:
        launch.run_as_program(main)
    assert ended.value.status == 0
    assert process_end == ['threads stopped', 'exit handlers', 'os._exit']
    assert capsys.readouterr().out == 'accuracy/top1: 98.4375\n'


@pytest.mark.parametrize('failure', [SystemExit('CheckpointSaveError: disk full'), SystemExit(3),
                                     RuntimeError('the loss went away')])
def test_a_failed_distributed_run_is_ended_by_the_interpreter(one_process_group, process_end, failure):
    def main():
        with launch.process_group_closed():
            one_process_group()
            raise failure

    with pytest.raises(type(failure)) as raised:
        launch.run_as_program(main)
    assert raised.value is failure
    assert process_end == []


def test_a_run_without_a_process_group_is_ended_by_the_interpreter(process_end):
    assert launch.run_as_program(lambda: None) is None
    assert process_end == []


EXITING_WHILE_GLOO_WORKS = textwrap.dedent('''
    import atexit
    import concurrent.futures
    import logging
    import logging.handlers
    import sys

    import torch
    import torch.distributed as dist

    from vmamba_mm import launch

    store, log_file = sys.argv[1:]
    # Buffered until logging.shutdown: written only if the exit handlers run.
    log = logging.getLogger('run')
    log.addHandler(logging.handlers.MemoryHandler(1000, target=logging.FileHandler(log_file)))
    atexit.register(print, 'exit handlers ran')
    group_users = []
    # An idle worker of a thread pool, as torch.compile's inductor leaves one: it stops only when told to.
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(int).result()


    def main():
        with launch.process_group_closed():
            dist.init_process_group('gloo', init_method=f'file://{store}', rank=0, world_size=1)
            group_users.append(dist.group.WORLD)  # as the run's DDP model keeps it
            # Still queued at exit: gloo's workers are freeing tensors while the process ends, the race
            # that aborted tools after their last collective.
            for _ in range(100):
                dist.all_reduce(torch.ones(2 ** 14), async_op=True)
            log.warning('run finished')
            print('accuracy/top1: 98.4375')


    launch.run_as_program(main)
''')


def test_a_successful_distributed_run_survives_gloo_work_at_exit_and_keeps_its_output(tmp_path):
    script = tmp_path / 'tool.py'
    script.write_text(EXITING_WHILE_GLOO_WORKS)
    log_file = tmp_path / 'run.log'
    # The abort is a race: ended by the interpreter instead, some of these processes abort, not all.
    result = subprocess.run([sys.executable, str(script), str(tmp_path / 'store'), str(log_file)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f'exit {result.returncode}\n{result.stderr[-4000:]}'
    assert result.stdout == 'accuracy/top1: 98.4375\nexit handlers ran\n'
    assert log_file.read_text() == 'run finished\n'
