"""Building a config's model and loading weights into it, for the analysis and export tools.

The tools look at a model outside a Runner: this builds it from the config's own registry (its
``default_scope``), keeps the constructor's initialisation (no download of pretrained weights), and
loads a checkpoint strictly, official VMamba files included.
"""
import importlib
from typing import Optional

import torch

import vmamba_mm.registry  # noqa: F401 (registers VMamba in the mm* registries)
from vmamba_mm import launch
from vmamba_mm.loading import load_weights


def build_model(config: str, checkpoint: Optional[str] = None, cfg_options: Optional[dict] = None,
                device: str = 'cpu') -> torch.nn.Module:
    """The config's model in eval mode, with ``checkpoint``'s weights when one is given.

    Without a checkpoint the weights are the constructor's random initialisation: the
    config's ``init_cfg`` (an ImageNet checkpoint for det/seg backbones) is not applied, so the
    result is the model "before training".
    """
    cfg = launch.load_config(config, cfg_options)
    scope = launch.register_scope(cfg)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    model = registry.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, scope)
    return model.to(device).eval()


def load_checkpoint(model: torch.nn.Module, path: str, scope: str) -> None:
    """Load an mm checkpoint (``state_dict``, from tools/train.py) or an official VMamba one, strictly.

    Raises :class:`~vmamba_mm.loading.IncompatibleCheckpointError` naming the keys that do not fit.
    """
    load_weights(model, path, task=launch.SCOPE_TASKS[scope])


class ClassifierLogits(torch.nn.Module):
    """An mmpretrain classifier as a plain ``images -> logits`` module."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images, mode='tensor')


def find_backbone(model: torch.nn.Module) -> torch.nn.Module:
    """The VMamba backbone of a classifier, detector or segmentor (or the model itself)."""
    from vmamba_mm.models import VMamba

    if isinstance(model, VMamba):
        return model
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, VMamba):
        raise TypeError(f'{type(model).__name__} has no VMamba backbone (found {type(backbone).__name__})')
    return backbone
