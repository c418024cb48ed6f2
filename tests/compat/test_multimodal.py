"""vmamba_mm must import mmpretrain/mmdet models beside a transformers that breaks mmpretrain's BLIP."""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('mmpretrain')

IMPORT_MODELS = 'import mmpretrain.models, mmdet.models; from mmpretrain.registry import MODELS; print(MODELS.get("ImageClassifier").__name__)'


@pytest.fixture
def transformers_5(tmp_path):
    """A stand-in transformers 5: top-level classes exist, but modeling_utils lacks the helpers
    (apply_chunking_to_forward, ...) that mmpretrain 1.2.0's BLIP imports."""
    package = tmp_path / 'transformers'
    (package / 'models' / 'auto').mkdir(parents=True)
    (package / '__init__.py').write_text(
        "__version__ = '5.0.0'\n"
        'from .modeling_utils import PreTrainedModel\n'
        'def __getattr__(name):  # AutoConfig, AutoTokenizer, BertModel, ...\n'
        '    return type(name, (PreTrainedModel, ), {})\n')
    (package / 'modeling_utils.py').write_text(
        'class PretrainedConfig:\n    @classmethod\n    def from_pretrained(cls, name):\n        return cls()\n'
        'class PreTrainedModel:\n    config_class = PretrainedConfig\n')
    (package / 'models' / '__init__.py').write_text('')
    (package / 'models' / 'auto' / '__init__.py').write_text('')
    (package / 'models' / 'auto' / 'auto_factory.py').write_text('class _BaseAutoModelClass:\n    pass\n')
    info = tmp_path / 'transformers-5.0.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: transformers\nVersion: 5.0.0\n')
    return tmp_path


def _run(code, site):
    return subprocess.run([sys.executable, '-c', code], env={**os.environ, 'PYTHONPATH': str(site)},
                          capture_output=True, text=True, timeout=300)


def test_stand_in_reproduces_the_crash(transformers_5):
    result = _run(IMPORT_MODELS, transformers_5)
    assert result.returncode != 0
    assert 'NoneType takes no arguments' in result.stderr


def test_import_vmamba_mm_first_keeps_mm_models_importable(transformers_5):
    code = textwrap.dedent('''
        import vmamba_mm
        IMPORT_MODELS
        try:
            MODELS.build(dict(type='BlipCaption'))
        except ImportError as error:
            print('ImportError:', error)
    ''').replace('IMPORT_MODELS', IMPORT_MODELS)
    result = _run(code, transformers_5)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == 'ImageClassifier'
    assert 'requires extra multi-modal dependencies' in lines[1]  # mmpretrain's own placeholder


def test_no_transformers_changes_nothing():
    import importlib.util

    from vmamba_mm.compat import disable_incompatible_multimodal
    if importlib.util.find_spec('transformers') is not None:
        pytest.skip('transformers is installed in this environment')
    assert disable_incompatible_multimodal() is False
