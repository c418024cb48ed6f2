"""mmseg's MMSegInferencer for vmamba_mm configs and checkpoints."""
from mmseg.apis import MMSegInferencer as _MMSegInferencer

from .base import StrictWeightsMixin


class MMSegInferencer(StrictWeightsMixin, _MMSegInferencer):
    """mmseg's ``MMSegInferencer`` (same arguments, same call, same results) for a vmamba_mm config: ``model`` is
    the config (file or Config), ``weights`` the checkpoint, loaded strictly through :mod:`vmamba_mm.loading`.
    Class names and palette come from the checkpoint's ``dataset_meta`` (tools/train.py writes them)."""
