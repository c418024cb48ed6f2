"""mmengine's Runner with every weight load through vmamba_mm's loading seam.

mmengine 0.10.7 loads ``load_from`` and ``init_cfg=dict(type='Pretrained')`` non-strictly (a checkpoint that
does not fit only warns, deep in the log, and the run goes on with random weights) and its ``resume`` passes a
checkpoint's ``meta['config']`` to ``Config.fromstring``, which executes it. :class:`StrictRunner` keeps
mmengine's behaviour otherwise.
"""
import contextlib
import time

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModule, BaseTTAModel, is_model_wrapper
from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..converters import official_to_mm
from ..loading import CheckpointError, load_weights, official_checkpoint, read_checkpoint, state_dict_of
from ..models import VMamba, compile_settings_for

# default_scope -> the converter's task name for official checkpoints.
SCOPE_TASKS = {'mmpretrain': 'cls', 'mmdet': 'det', 'mmseg': 'seg'}
# What --resume needs besides the weights: mmengine's progress, optimizer and message hub.
RESUME_ENTRIES = ('meta', 'optimizer', 'message_hub')


def compile_options_of(cfg, device_type):
    """torch.compile's keyword arguments from a config's ``compile`` for a model on ``device_type``, or None when
    it is not to be compiled. ``'auto'`` compiles on GPUs only: on a CPU, compiling costs more than it saves in
    the short runs done there."""
    options = cfg.get('compile')
    if options == 'auto':
        return {} if device_type == 'cuda' else None
    if options is None or options is False:
        return None
    if options is True:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"compile must be True, False, 'auto' or a dict of torch.compile arguments, got {options!r}")
    return dict(options)


def check_resumable(checkpoint, filename):
    """Raise :class:`~vmamba_mm.loading.CheckpointError` unless ``checkpoint`` (read from ``filename``) holds what
    ``--resume`` continues a run from."""
    missing = [entry for entry in RESUME_ENTRIES if not isinstance(checkpoint.get(entry), dict)]
    if missing:
        raise CheckpointError(
            f'--resume {filename}: not a training checkpoint of tools/train.py (no {", ".join(missing)}); '
            f'to start a new run from its weights, pass --cfg-options load_from={filename} instead')


class FirstIterationTimeHook(Hook):
    """Logs how long the first training iteration took: with a compiled model, mostly compilation."""

    def __init__(self):
        self.start = None
        self.logged = False

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.start is None:
            self.start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.logged:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        runner.logger.info(f'first training iteration (compilation included): {time.perf_counter() - self.start:.1f} s')
        self.logged = True


def _is_pretrained(init_cfg):
    return init_cfg.get('type') in ('Pretrained', PretrainedInit)


@RUNNERS.register_module()
class StrictRunner(Runner):
    """mmengine's ``Runner`` (same arguments) whose weight loads go through :mod:`vmamba_mm.loading`.

    - ``load_from`` (tools/test.py's checkpoint among them) loads strictly: a checkpoint that does not fit
      the model raises :class:`~vmamba_mm.loading.IncompatibleCheckpointError` listing the keys, before any
      metric. Official VMamba checkpoints are converted; a bare state dict is taken as the weights.
    - ``resume`` reads the checkpoint as data: a config text in its meta is dropped, never executed. A file
      that is not a training checkpoint (weights only, an official release) is a
      :class:`~vmamba_mm.loading.CheckpointError` saying what ``--resume`` needs.
    - ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=None, strict=True)`` on any module of the
      model loads strictly, after the other initialisation as in mmengine (the VMamba backbone loads its own
      the same way). ``strict=False`` is the explicit partial load.
    - A config's ``compile`` (True, ``'auto'`` for GPUs only, or a dict of torch.compile arguments) compiles the
      model's forward, and with it the loss and, through AOTAutograd, the backward. mmengine would compile
      ``train_step``, whose optimizer step dynamo fails on. Training, validation and testing run under VMamba's
      compile settings (:mod:`vmamba_mm.models.compile_settings`) when the model has a VMamba backbone, and
      the first training iteration's time, compilation included, is logged.
    """

    WHOLE_MODEL_HINT = ("Use a checkpoint of this config's model; to start from another model's backbone, give the "
                        "backbone init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.').")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._forward_compiled = False

    @property
    def _bare_model(self):
        """The model without its DDP-style wrapper or test-time-augmentation wrapper (whose weights are the
        wrapped model's, as mmengine loads them)."""
        model = self.model.module if is_model_wrapper(self.model) else self.model
        return model.module if isinstance(model, BaseTTAModel) else model

    def _official_task(self):
        """The converter task for an official checkpoint loaded into the whole model, if it has a VMamba."""
        if any(isinstance(module, VMamba) for module in self._bare_model.modules()):
            return SCOPE_TASKS.get(self.cfg.get('default_scope'))
        return None

    # Checkpoints

    def load_checkpoint(self, filename, map_location='cpu', strict=True, revise_keys=None):
        """Load ``filename`` into the model strictly (``strict=False`` for a named partial load); returns the
        checkpoint as the hooks saw it (mmengine names; ``state_dict`` always present)."""
        checkpoint = read_checkpoint(filename)
        if self._resume:
            check_resumable(checkpoint, filename)
        checkpoint = self._as_mm_checkpoint(checkpoint, filename)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_weights(self._bare_model, checkpoint, strict=strict, name=filename, hint=self.WHOLE_MODEL_HINT)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def _as_mm_checkpoint(self, checkpoint, filename):
        """The checkpoint with its weights under ``state_dict`` in vmamba_mm names and no executable meta."""
        task = self._official_task()
        if task is not None and official_checkpoint(checkpoint):
            state_dict = official_to_mm(checkpoint, task=task)
            checkpoint = {key: value for key, value in checkpoint.items() if key not in ('model', 'model_ema')}
        else:
            state_dict = state_dict_of(checkpoint, filename)
        checkpoint = dict(checkpoint, state_dict=state_dict)
        if isinstance(checkpoint.get('meta'), dict):
            # mmengine's resume executes meta['config'] (Config.fromstring); a checkpoint is data only.
            checkpoint['meta'] = {key: value for key, value in checkpoint['meta'].items() if key != 'config'}
        return checkpoint

    def _init_model_weights(self):
        """mmengine's initialisation, with each ``Pretrained`` init_cfg loaded strictly afterwards."""
        model = self._bare_model
        pretrained = []
        for module in model.modules():
            if isinstance(module, VMamba) or not isinstance(module, BaseModule) or not module.init_cfg:
                continue
            init_cfgs = module.init_cfg if isinstance(module.init_cfg, list) else [module.init_cfg]
            loads = [init_cfg for init_cfg in init_cfgs if _is_pretrained(init_cfg)]
            if loads:
                rest = [init_cfg for init_cfg in init_cfgs if not _is_pretrained(init_cfg)]
                module.init_cfg = rest or None
                pretrained.append((module, loads))
        super()._init_model_weights()
        # Inner modules first, so that an outer module's checkpoint has the last word, as in mmengine.
        for module, loads in reversed(pretrained):
            task = self._official_task() if module is model else None
            for init_cfg in loads:
                load_weights(module, init_cfg['checkpoint'], task=task, prefix=init_cfg.get('prefix'),
                             strict=init_cfg.get('strict', True),
                             hint='To load only the keys that fit, add strict=False to the init_cfg.')

    # Compilation

    def _maybe_compile(self, target):
        """Compiles the model's forward (whatever ``target`` mmengine names), once."""
        if self._forward_compiled:
            return
        parameter = next(self._bare_model.parameters(), None)
        options = compile_options_of(self.cfg, 'cpu' if parameter is None else parameter.device.type)
        if options is None:
            return
        self._bare_model.forward = torch.compile(self._bare_model.forward, **options)
        self._forward_compiled = True
        self.logger.info(f"compile={self.cfg.compile!r}: the model's forward is compiled (torch.compile options: "
                         f'{options}); the first iterations include the compilation, compile=False trains without it')
        self.register_hook(FirstIterationTimeHook(), priority='VERY_LOW')

    def _compiled_run(self, run):
        self._maybe_compile('forward')
        with compile_settings_for(self.model) if self._forward_compiled else contextlib.nullcontext():
            return run()

    def train(self):
        return self._compiled_run(super().train)

    def val(self):
        return self._compiled_run(super().val)

    def test(self):
        return self._compiled_run(super().test)
