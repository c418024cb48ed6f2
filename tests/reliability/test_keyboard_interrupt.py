"""Ctrl-C ends a tool with one line and exit status 130: for training, the last complete checkpoint and the
command that resumes from it."""
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from reliability_runner import REPO, run_python, tool_env

from vmamba_mm import launch

TRAIN, TEST = REPO / 'tools' / 'train.py', REPO / 'tools' / 'test.py'
DEMO = REPO / 'configs' / 'classification' / 'vmamba-demo_digits.py'

# 64 digits in batches of 32: 2 steps per epoch, 3 epochs, a checkpoint after every step; every step takes
# at least a second, so that the signal arrives during training.
SLOW_RUN = '''
_base_ = ['{demo}']
data_root = '{data}'
max_epochs = 3
custom_imports = dict(imports=['vmamba_mm', 'interruptions'], allow_failed_imports=False)
train_dataloader = dict(batch_size=32, dataset=dict(data_root=data_root, indices=64))
val_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root, indices=32))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1, max_keep_ckpts=2))
custom_hooks = [dict(type='SlowSteps', seconds=1.0)]
'''


@pytest.mark.parametrize('argv, command', [
    (['tools/train.py', 'cfg.py'], 'python tools/train.py cfg.py --resume'),
    (['tools/train.py', 'cfg.py', '--work-dir', 'my run', '--amp'],
     "python tools/train.py cfg.py --work-dir 'my run' --amp --resume"),
    (['tools/train.py', 'cfg.py', '--resume', 'old.pth', '--cfg-options', 'a=1'],
     'python tools/train.py cfg.py --cfg-options a=1 --resume'),
    (['tools/train.py', 'cfg.py', '--resume', '--cfg-options', 'a=1'],
     'python tools/train.py cfg.py --cfg-options a=1 --resume'),
    (['tools/train.py', '--resume=old.pth', 'cfg.py'], 'python tools/train.py cfg.py --resume'),
])
def test_the_resume_command_is_the_training_command_with_resume(tmp_path, argv, command):
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert launch.interrupted_message(dict(work_dir=str(tmp_path)), argv) == \
        f'interrupted; the last complete checkpoint is {tmp_path / "iter_4.pth"}; resume with: {command}'


def test_before_the_first_checkpoint_the_command_starts_again(tmp_path):
    assert launch.interrupted_message(dict(work_dir=str(tmp_path)), ['tools/train.py', 'cfg.py']) == \
        f'interrupted before the first checkpoint in {tmp_path} was written; start again with: ' \
        'python tools/train.py cfg.py --resume'


@pytest.mark.parametrize('cfg, argv', [(None, ['tools/train.py', 'cfg.py']),
                                       (dict(work_dir='run'), ['tools/test.py', 'cfg.py', 'epoch_1.pth'])])
def test_other_interruptions_say_only_that(cfg, argv):
    assert launch.interrupted_message(cfg, argv) == 'interrupted'


@pytest.fixture
def ctrl_c_reaches_the_tools():
    """A shell starts its background jobs with SIGINT ignored, and an ignored signal stays ignored across exec,
    so a suite started with `&` would give the tools no KeyboardInterrupt. A handled signal is reset to its
    default in an exec'd child instead."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
@pytest.mark.usefixtures('ctrl_c_reaches_the_tools')
def test_ctrl_c_during_training_and_testing(tmp_path, digits_root):
    config = tmp_path / 'slow.py'
    config.write_text(textwrap.dedent(SLOW_RUN).format(demo=DEMO, data=digits_root))
    work_dir = tmp_path / 'run'
    training = subprocess.Popen([sys.executable, str(TRAIN), str(config), '--work-dir', str(work_dir)], cwd=tmp_path,
                                env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (work_dir / 'last_checkpoint').exists() and training.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    training.send_signal(signal.SIGINT)
    _, stderr = training.communicate(timeout=120)

    assert training.returncode == 130, stderr[-3000:]
    assert 'Traceback' not in stderr
    checkpoint = (work_dir / 'last_checkpoint').read_text()
    resume = shlex.join(['python', str(TRAIN), str(config), '--work-dir', str(work_dir), '--resume'])
    assert stderr.strip().splitlines()[-1] == \
        f'interrupted; the last complete checkpoint is {checkpoint}; resume with: {resume}'

    # The command does what it says: training continues from that checkpoint to the end.
    resumed = run_python(*shlex.split(resume)[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'Load checkpoint from {checkpoint}' in resumed.stdout + resumed.stderr
    assert (work_dir / 'iter_6.pth').exists()

    interrupted_test = tmp_path / 'interrupted_test.py'
    interrupted_test.write_text(f"_base_ = ['./slow.py']\n"
                                f"custom_hooks = [dict(type='SigintAtTestIteration', iteration=2)]\n")
    testing = run_python(TEST, interrupted_test, work_dir / 'iter_6.pth', '--work-dir', tmp_path / 'test',
                         cwd=tmp_path)
    assert testing.returncode == 130, testing.stderr[-3000:]
    assert 'Traceback' not in testing.stderr
    assert testing.stderr.strip().splitlines()[-1] == 'interrupted'
