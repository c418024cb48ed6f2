"""What vmamba_mm's inferencers share with each other.

- Weights enter the model through :mod:`vmamba_mm.loading`, as everywhere in vmamba_mm: the checkpoint is read as
  data, an official VMamba checkpoint is converted, and a checkpoint that does not fit the config's model is an
  :class:`~vmamba_mm.loading.IncompatibleCheckpointError` listing the keys instead of a run on random weights.
  The upstream inferencers load with mmengine's lenient ``load_checkpoint``, and without a config they execute
  the config text stored in the checkpoint; here a config is required.
- The config's test pipeline is made fit for bare images: vmamba_mm's checked image loading becomes the plain
  loader each inferencer knows how to replace, and what needs annotations (loading them, checking labels) goes.
"""
import copy

from mmengine.config import Config, ConfigDict

from ..engine.runner import SCOPE_TASKS
from ..loading import load_weights, read_checkpoint
from ..models import VMamba

# Transforms that read or check annotations, which images given for inference do not have.
ANNOTATION_TRANSFORMS = ('LoadAnnotations', 'CheckClassLabels', 'CheckSegLabels')
CHECKED_LOADER = 'CheckedLoadImageFromFile'

WHOLE_MODEL_HINT = "Use a checkpoint of this config's model (tools/train.py writes one), or an official VMamba release."


def _type_name(transform):
    kind = transform['type']
    name = kind if isinstance(kind, str) else kind.__name__
    return name.rpartition('.')[2]  # 'mmdet.LoadAnnotations' -> 'LoadAnnotations'


def inference_pipeline(pipeline):
    """A copy of a test pipeline for images without annotations: ``CheckedLoadImageFromFile`` becomes
    ``LoadImageFromFile`` (same arguments but ``on_error``, which concerns datasets), and the transforms that
    load or check annotations are left out."""
    adapted = []
    for transform in pipeline:
        name = _type_name(transform)
        if name in ANNOTATION_TRANSFORMS:
            continue
        transform = copy.deepcopy(transform)
        if name == CHECKED_LOADER:
            transform.pop('on_error', None)
            transform['type'] = 'LoadImageFromFile'
        adapted.append(transform)
    return adapted


def with_inference_pipeline(cfg):
    """A copy of ``cfg`` whose ``test_dataloader.dataset.pipeline`` is :func:`inference_pipeline`'s."""
    try:
        pipeline = cfg['test_dataloader']['dataset']['pipeline']
    except KeyError as error:
        raise ValueError('inference runs the config\'s test pipeline, but the config has no '
                         'test_dataloader.dataset.pipeline') from error
    cfg = copy.deepcopy(cfg)
    cfg.test_dataloader.dataset.pipeline = inference_pipeline(pipeline)
    return cfg


def official_task(model, scope):
    """The converter task of an official checkpoint for a whole model of ``scope`` with a VMamba backbone."""
    if any(isinstance(module, VMamba) for module in model.modules()):
        return SCOPE_TASKS.get(scope)
    return None


def load_inference_weights(model, weights, scope):
    """Load ``weights`` (a path or URL) into ``model`` strictly through :mod:`vmamba_mm.loading`.

    Returns the checkpoint as mmengine-based code reads it: the checkpoint's ``meta`` (class names, palette) and
    the weights the model now holds under ``state_dict``, so that an upstream loader handed it changes nothing."""
    if not isinstance(weights, str):
        raise ValueError(f'inference needs a checkpoint file of the model (a path or URL), got {weights!r}')
    checkpoint = read_checkpoint(weights)
    load_weights(model, checkpoint, task=official_task(model, scope), name=weights, hint=WHOLE_MODEL_HINT)
    meta = checkpoint.get('meta')
    return dict(meta=meta if isinstance(meta, dict) else {}, state_dict=model.state_dict())


def as_config(model):
    """A config file path or a Config, as a Config (a deep copy: inferencers edit theirs)."""
    if model is None:
        raise ValueError('a vmamba_mm inferencer needs the config of the model: vmamba_mm never executes the '
                         'config text a checkpoint carries')
    if isinstance(model, (Config, ConfigDict)):
        return copy.deepcopy(model)
    if isinstance(model, str):
        from ..launch import load_config

        return load_config(model)
    raise TypeError(f'a vmamba_mm inferencer is built from a config file or a Config, got {type(model).__name__}')


class InferencePipelineMixin:
    """The inferencer's own test pipeline, built from :func:`with_inference_pipeline`'s config."""

    def _init_pipeline(self, cfg):
        return super()._init_pipeline(with_inference_pipeline(cfg))


class StrictWeightsMixin(InferencePipelineMixin):
    """For mmengine's ``BaseInferencer`` (mmdet's and mmseg's inferencers): the model is built from the config
    and its weights come through :func:`load_inference_weights`; the inferencer's own
    ``_load_weights_to_model`` then reads the class names and palette from the checkpoint's meta."""

    def _init_model(self, cfg, weights, device='cpu'):
        from mmengine.registry import MODELS

        model = MODELS.build(cfg.model)  # in the inferencer's default scope
        model.cfg = cfg
        self._load_weights_to_model(model, load_inference_weights(model, weights, self.scope), cfg)
        return model.to(device).eval()

    def __init__(self, model, *args, **kwargs):
        super().__init__(as_config(model), *args, **kwargs)
