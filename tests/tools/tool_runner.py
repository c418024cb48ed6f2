"""Helpers to run vmamba_mm's command-line tools the way a user does: as scripts, from a project folder."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_tool(script, *args, cwd, timeout=1800):
    """`python tools/<script> args...` in `cwd`; returns the CompletedProcess (text, both streams kept)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    # One intra-op thread per tool process: on small shared CPU machines several threads per process
    # oversubscribe the cores and a tiny model's step gets many times slower.
    env.setdefault('OMP_NUM_THREADS', '1')
    return subprocess.run([sys.executable, str(REPO / 'tools' / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def load_module(path):
    """Import the Python file at `path` as a module of its own (scripts and helpers are no package)."""
    spec = importlib.util.spec_from_file_location(f'vmamba_mm_test_{Path(path).stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(script):
    """Import tools/<script> as a module, for checks of its argument handling without a subprocess."""
    return load_module(REPO / 'tools' / script)
