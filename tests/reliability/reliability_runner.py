"""Running vmamba_mm's tools as a user does, for the reliability tests (a module of its own: every test
folder has a conftest.py, so `from conftest import ...` would pick whichever pytest imported first)."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def tool_env():
    """The environment of a tool's process: the repository and this folder (test-only hooks) importable."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), str(HERE),
                                                                     os.environ.get('PYTHONPATH')])))
    env.setdefault('OMP_NUM_THREADS', '1')  # several threads per process only oversubscribe small CPUs
    return env


def run_python(*args, cwd, timeout=600):
    """`python args...` in `cwd`, in `tool_env()`."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=tool_env(), capture_output=True, text=True,
                          timeout=timeout)


def run_train(*args, cwd, timeout=600):
    return run_python(REPO / 'tools' / 'train.py', *args, cwd=cwd, timeout=timeout)
