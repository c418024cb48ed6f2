"""Fixtures of the inference tests: the demo project (data and random checkpoints), shared by the session."""
import pytest

from demo_models import demo_project as _demo_project


@pytest.fixture(scope='session')
def demo_project(tmp_path_factory):
    return _demo_project(tmp_path_factory)
