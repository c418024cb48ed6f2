"""Fixtures of the distributed launch tests: the digits demo data, the environment of launched jobs, the
single-process training every distributed one is compared with, and a local two-node SLURM cluster."""
import os
import subprocess
import sys

import pytest

from launch_paths import HERE, PROBE_CONFIG, REPO_ROOT
from launch_runs import check, run, train_options
from local_slurm import LocalSlurmCluster, SlurmUnavailable


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """The demo's digits dataset, written by its own converter."""
    root = tmp_path_factory.mktemp('data') / 'digits'
    subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / 'dataset_converters' / 'make_digits_demo.py'),
                    '--out', str(root)], check=True, capture_output=True)
    return root


@pytest.fixture(scope='session')
def job_env():
    """Environment of launched jobs: this interpreter, the test hooks importable, one thread per process
    (2 processes share the CI machine's cores; the same count in every run keeps sums in one order)."""
    return {**os.environ, 'PYTHON': sys.executable, 'OMP_NUM_THREADS': '1',
            'PYTHONPATH': os.pathsep.join(filter(None, [str(HERE), os.environ.get('PYTHONPATH')]))}


@pytest.fixture(scope='session')
def probe_options(digits_root):
    """`--cfg-options` pointing the probe config at the test data."""
    return ['--cfg-options'] + [f'{loader}.dataset.data_root={digits_root}'
                                for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


@pytest.fixture(scope='session')
def single_process_run(tmp_path_factory, job_env, probe_options):
    """Work dir of the probe config trained by one process (tools/train.py) on the global batch: the reference
    of every distributed training, whichever launcher and however many nodes."""
    work_dir = tmp_path_factory.mktemp('train_1proc')
    check(run([sys.executable, 'tools/train.py', PROBE_CONFIG, '--work-dir', work_dir,
               *train_options(1, probe_options)], job_env))
    return work_dir


@pytest.fixture(scope='session')
def slurm_cluster():
    try:
        with LocalSlurmCluster() as cluster:
            yield cluster
    except SlurmUnavailable as reason:
        pytest.skip(f'no local SLURM cluster: {reason}')
