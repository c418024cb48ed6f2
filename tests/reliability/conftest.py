"""Fixtures of the reliability tests: a digits project and running vmamba_mm's tools as a user does."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def run_python(*args, cwd, timeout=600):
    """`python args...` in `cwd` with the repository and this folder (test-only hooks) importable."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), str(HERE),
                                                                     os.environ.get('PYTHONPATH')])))
    env.setdefault('OMP_NUM_THREADS', '1')  # several threads per process only oversubscribe small CPUs
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_train(*args, cwd, timeout=600):
    return run_python(REPO / 'tools' / 'train.py', *args, cwd=cwd, timeout=timeout)


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """The digits demo dataset (written once per session)."""
    root = tmp_path_factory.mktemp('digits') / 'data' / 'digits'
    result = run_python(REPO / 'tools' / 'dataset_converters' / 'make_digits_demo.py', '--out', root, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def mm_log():
    """The messages mmengine's current logger emits during the test (a list of strings, filled as it goes)."""
    import logging

    from mmengine.logging import MMLogger

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger, handler = MMLogger.get_current_instance(), Collect()
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
