"""Register :class:`~vmamba_mm.models.VMamba` in the MODELS registry of every installed
OpenMMLab model library, so ``custom_imports=dict(imports=['vmamba_mm'])`` makes
``backbone=dict(type='VMamba', ...)`` buildable from mmpretrain, mmdet and mmseg configs.

Only each library's ``registry`` module is imported, not its models, to keep the import light.
A library that is not installed is skipped; one that is installed but fails to import raises.
"""
import importlib
import importlib.util

from .models import VMamba

MODEL_LIBRARIES = ('mmpretrain', 'mmdet', 'mmseg')


def register_models() -> tuple:
    """Register VMamba where possible; returns the names of the libraries that have it."""
    registered = []
    for library in MODEL_LIBRARIES:
        if importlib.util.find_spec(library) is None:
            continue
        models = importlib.import_module(f'{library}.registry').MODELS
        if models.module_dict.get('VMamba') is not VMamba:  # not .get(): it imports the library's models
            models.register_module(module=VMamba)
        registered.append(library)
    return tuple(registered)


REGISTERED_LIBRARIES = register_models()
