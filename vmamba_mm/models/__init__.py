"""VMamba models for OpenMMLab (registered by :mod:`vmamba_mm.registry`)."""
from .backbones import VMamba

__all__ = ['VMamba']
