"""Keep `import mmpretrain.models` (and so `import mmdet.models`) working beside transformers 5.

mmpretrain 1.2.0 enables its multimodal models whenever `transformers>=4.28` is installed. Its BLIP code
imports names that transformers 5 removed, swallows the ImportError, and then subclasses `None`:
`TypeError: NoneType takes no arguments` at `import mmpretrain.models`. VMamba needs none of those
models, so with an incompatible transformers we switch mmpretrain's multimodal flag off before its
models package is imported; mmpretrain then registers its own "please install" placeholders instead.
"""
import importlib.metadata
import importlib.util
import sys

FIRST_INCOMPATIBLE_TRANSFORMERS = 5


def _installed_major(distribution):
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    leading = version.split('.')[0]
    return int(leading) if leading.isdigit() else None


def disable_incompatible_multimodal():
    """Turn off mmpretrain's multimodal models when transformers is too new for them.

    Returns True when the flag was switched off. Does nothing when mmpretrain is absent, when
    transformers is absent or compatible, or when mmpretrain's models were imported already.
    """
    major = _installed_major('transformers')
    if major is None or major < FIRST_INCOMPATIBLE_TRANSFORMERS:
        return False
    if importlib.util.find_spec('mmpretrain') is None or 'mmpretrain.models' in sys.modules:
        return False
    from mmpretrain.utils import dependency
    dependency.WITH_MULTIMODAL = False
    return True
