"""mmpretrain's ImageClassificationInferencer for vmamba_mm configs and checkpoints."""
from mmpretrain.apis import ImageClassificationInferencer as _ImageClassificationInferencer
from mmpretrain.apis import get_model

from .base import InferencePipelineMixin, as_config, load_inference_weights


class ImageClassificationInferencer(InferencePipelineMixin, _ImageClassificationInferencer):
    """mmpretrain's ``ImageClassificationInferencer`` (same call, same results) for a vmamba_mm config.

    The weights are loaded strictly through :mod:`vmamba_mm.loading` (an official VMamba checkpoint is
    converted), and the class names come from the checkpoint's ``dataset_meta`` when it has them (tools/train.py
    writes them), else from the config's dataset class.

    Args:
        model (str | Config): The config file, or the config.
        pretrained (str): The checkpoint, a path or URL.
        device (str, optional): Where the model runs (default: mmengine's choice of the available device).
        classes (list[str], optional): Class names that override the checkpoint's.
        **kwargs: Overrides of the config's ``model`` entries, as for mmpretrain's ``get_model``.
    """

    # What mmengine's inferencers (mmdet's, mmseg's) call their library and config, for vmamba_mm.apis's
    # task-independent code.
    scope = 'mmpretrain'

    def __init__(self, model, pretrained, device=None, classes=None, **kwargs):
        classifier = get_model(as_config(model), pretrained=False, **kwargs)
        meta = load_inference_weights(classifier, pretrained, 'mmpretrain')['meta']
        if meta.get('dataset_meta'):
            classifier._dataset_meta = meta['dataset_meta']
        super().__init__(classifier, pretrained=False, device=device, classes=classes)
        self.cfg = self.config
