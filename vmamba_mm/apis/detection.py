"""mmdet's DetInferencer for vmamba_mm configs and checkpoints."""
from mmdet.apis import DetInferencer as _DetInferencer

from .base import StrictWeightsMixin


class DetInferencer(StrictWeightsMixin, _DetInferencer):
    """mmdet's ``DetInferencer`` (same arguments, same call, same results) for a vmamba_mm config: ``model`` is
    the config (file or Config), ``weights`` the checkpoint, loaded strictly through :mod:`vmamba_mm.loading`.
    Class names come from the checkpoint's ``dataset_meta`` (tools/train.py writes them), the palette from the
    config's test dataset, as in mmdet."""
