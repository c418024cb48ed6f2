"""Fixtures of the tools tests."""
import pytest

from tool_runner import REPO, load_module, load_tool

# The demo models and data of the inference tests, made once per session for both test folders.
demo_models = load_module(REPO / 'tests' / 'apis' / 'demo_models.py')


@pytest.fixture(scope='session')
def digits_project(tmp_path_factory):
    """A project folder whose data/digits holds the demo dataset (written once per session)."""
    project = tmp_path_factory.mktemp('digits_project')
    converter = load_tool('dataset_converters/make_digits_demo.py')
    converter.make_digits_demo(str(project / 'data' / 'digits'))
    return project


@pytest.fixture(scope='session')
def demo_project(tmp_path_factory):
    """A project folder with the three demo data sets written small (tests/apis/demo_models.py, shared with
    tests/apis for the session)."""
    return demo_models.demo_project(tmp_path_factory)
