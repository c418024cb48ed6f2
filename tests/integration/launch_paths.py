"""Paths shared by the distributed launch tests (test modules cannot import conftest.py reliably: other
test folders have one of the same name)."""
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PROBE_CONFIG = HERE / 'configs' / 'vmamba-demo_digits_probe.py'
