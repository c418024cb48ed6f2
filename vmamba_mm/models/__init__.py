"""VMamba models for OpenMMLab (registered by :mod:`vmamba_mm.registry`)."""
from .backbones import VMamba
from .compile_settings import compile_settings_for, vmamba_compile_settings

__all__ = ['VMamba', 'compile_settings_for', 'vmamba_compile_settings']
