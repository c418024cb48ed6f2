"""Let mmengine 0.10.7 load its own checkpoints under torch >= 2.6, without trusting arbitrary pickles.

torch 2.6 made `torch.load(..., weights_only=True)` the default. mmengine 0.10.7 calls `torch.load`
without the argument, so `resume=True` fails on the message hub's `HistoryBuffer` (and the
`getattr` it pickles its statistics methods with) and on numpy arrays, scalars and dtypes in a
checkpoint's meta. Instead of switching weights_only off, vmamba_mm's entry
points run inside `trusted_checkpoint_globals()`, which allow-lists exactly the types mmengine writes,
for the duration of the `with` block only.
"""
import contextlib
import functools
import pickle

import numpy as np
import torch


@functools.lru_cache(maxsize=None)
def _numpy_globals():
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries = [np.ndarray, np.dtype]
    entries += [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    # Checkpoints written under numpy 1.x name these functions `numpy.core.multiarray.*`.
    for function in (multiarray._reconstruct, multiarray.scalar):
        entries += [function, (function, f'numpy.core.multiarray.{function.__name__}'),
                    (function, f'numpy._core.multiarray.{function.__name__}')]
    return tuple(entries)


def _history_buffer_statistic(owner, name):
    """Stands in for `getattr` while unpickling: HistoryBuffer pickles its statistics methods as
    `getattr(HistoryBuffer, 'mean')`. Allowing the real `getattr` would let a file reach anything, so
    only public methods defined on HistoryBuffer itself are served."""
    from mmengine.logging import HistoryBuffer
    method = vars(HistoryBuffer).get(name) if owner is HistoryBuffer and not name.startswith('_') else None
    if not callable(method):
        raise pickle.UnpicklingError(f'refusing getattr({owner!r}, {name!r}) while loading a checkpoint')
    return getattr(owner, name)


def _mmengine_globals():
    try:
        from mmengine.logging import HistoryBuffer
    except ImportError:
        return ()
    return (HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr'))


def checkpoint_safe_globals():
    """The types mmengine puts in a checkpoint besides tensors and builtin containers."""
    return _numpy_globals() + _mmengine_globals()



@contextlib.contextmanager
def trusted_checkpoint_globals():
    """Allow `torch.load(weights_only=True)` to read mmengine checkpoints inside this block."""
    with torch.serialization.safe_globals(list(checkpoint_safe_globals())):
        yield
