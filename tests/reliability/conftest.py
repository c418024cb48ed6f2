"""Fixtures of the reliability tests: the demo data sets and running vmamba_mm's tools as a user does."""
import pytest

from reliability_runner import REPO, run_python


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """The digits demo dataset (written once per session)."""
    root = tmp_path_factory.mktemp('digits') / 'data' / 'digits'
    result = run_python(REPO / 'tools' / 'dataset_converters' / 'make_digits_demo.py', '--out', root, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope='session')
def shapes_project(tmp_path_factory):
    """A project folder holding both shapes demo data sets where the demo configs look for them (data/shapes_coco,
    data/shapes_ade), 12 training and 4 held-out images each (written once per session)."""
    project = tmp_path_factory.mktemp('shapes_project')
    for layout in ('coco', 'ade'):
        result = run_python(REPO / 'tools' / 'dataset_converters' / 'make_shapes_demo.py', layout, '--num-train', 12,
                            '--num-val', 4, cwd=project)
        assert result.returncode == 0, result.stderr
    return project


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
