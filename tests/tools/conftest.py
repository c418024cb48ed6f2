"""Fixtures of the tools tests."""
import pytest

from tool_runner import load_tool


@pytest.fixture(scope='session')
def digits_project(tmp_path_factory):
    """A project folder whose data/digits holds the demo dataset (written once per session)."""
    project = tmp_path_factory.mktemp('digits_project')
    converter = load_tool('dataset_converters/make_digits_demo.py')
    converter.make_digits_demo(str(project / 'data' / 'digits'))
    return project
