"""Training throughput in the loop users run, and where a step's time goes.

:func:`benchmark_config` builds the Runner from a task config exactly as ``tools/train.py`` does (strict runner,
the config's optimizer wrapper, AMP, gradient clipping, EMA, hooks and logging), with only the dataset swapped for
an in-memory one of the same shape (:mod:`vmamba_mm.datasets.synthetic`) that runs the rest of the config's training
pipeline, and times it. :func:`benchmark_official_classification` runs the official VMamba classifier in a loop doing
what the official ``main.py`` ``train_one_epoch`` does; :func:`benchmark_config` with ``official_source`` swaps the
official mmdet/mmseg backbone into the config, so that only the backbone differs. The official code is imported
from ``$VMAMBA_OFFICIAL_SRC`` at run time and is never part of this project.

Times come from one clock per device: CUDA events recorded in the compute stream on GPUs (no synchronisation is
added inside a step; the events are read after the run) and ``time.perf_counter`` on the CPU. Every part of the
breakdown is a set of disjoint spans inside its iteration, so the parts and the remainder add up to the step time.
"""
import contextlib
import gc
import itertools
import os
import tempfile
import time
from collections import defaultdict

import torch

# The breakdown of a training step, in the order of the table.
PARTS = ('data', 'preprocess', 'backbone_forward', 'backbone_backward', 'model_rest', 'optimizer', 'ema', 'hooks',
         'remainder')
PART_DOCS = {
    'data': 'waiting for the next batch (what mmengine logs as data_time)',
    'preprocess': 'the data preprocessor: host-to-device copy, normalisation, batch augments (mixup/cutmix)',
    'backbone_forward': 'the backbone forward (none when the model is compiled: it is inside one graph)',
    'backbone_backward': 'from the first gradient at the backbone outputs to the last backbone parameter gradient',
    'model_rest': 'the rest of forward + loss + backward: neck, heads, losses, the loss scaler',
    'optimizer': 'the optimizer wrapper step: unscaling, gradient clipping, the update, the loss-scale update',
    'ema': 'the EMA update',
    'hooks': 'every other hook (logging, schedulers, timers, checks) or the official loop\'s bookkeeping',
    'remainder': 'the rest of the iteration (the loop itself, zero_grad)',
}
# Transforms that read files: the synthetic datasets hand out what they would have produced.
LOADING_TRANSFORMS = ('LoadImageFromFile', 'CheckedLoadImageFromFile', 'LoadAnnotations')
OFFICIAL_BACKBONE = 'BenchmarkOfficialVSSM'
_RUN_NUMBERS = itertools.count()
OFFICIAL_ENV = 'VMAMBA_OFFICIAL_SRC'
# The official constructor arguments of the two VMamba designs, as its released configs set them.
OFFICIAL_DESIGNS = {
    'v2': dict(ssm_dt_rank='auto', ssm_conv=3, ssm_conv_bias=False, forward_type='v05_noz', mlp_ratio=4.0,
               downsample_version='v3', patchembed_version='v2', norm_layer='ln2d'),
    'vanilla': dict(ssm_dt_rank='auto', ssm_conv=3, ssm_conv_bias=True, forward_type='v0', mlp_ratio=0.0,
                    downsample_version='v1', patchembed_version='v1', norm_layer='ln'),
}


class OfficialSourceMissing(ValueError):
    """An official baseline was asked for, but ``$VMAMBA_OFFICIAL_SRC`` names no checkout of the official repo."""


class Clock:
    """Marks on one timeline: CUDA events in the current stream on GPUs, ``perf_counter`` on the CPU."""

    def __init__(self, device):
        self.cuda = torch.device(device).type == 'cuda'

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def ms(self, start, end):
        return start.elapsed_time(end) if self.cuda else (end - start) * 1e3

    def synchronize(self):
        if self.cuda:
            torch.cuda.synchronize()


class StepRecorder:
    """Spans of named parts within training iterations, turned into a per-part mean after the run.

    ``begin``/``end`` open and close a span of a part (a part may have several spans per iteration);
    ``close_iteration`` ends an iteration at the mark its next one starts from. Warm-up iterations are recorded
    like the others and left out of :meth:`summary`. The wall clock (synchronised once at the start and once at
    the end of the timed iterations) gives the throughput.
    """

    def __init__(self, device, warmup, iterations):
        if warmup < 1 or iterations < 1:
            raise ValueError(f'the benchmark needs at least one warm-up and one timed iteration, got warmup={warmup}, '
                             f'iterations={iterations}')
        self.clock = Clock(device)
        self.device = torch.device(device)
        self.warmup, self.iterations = warmup, iterations
        self.total = warmup + iterations
        self.done = 0
        self.spans = []  # per iteration: {part: [(start, end), ...]}, plus the iteration's own (start, end)
        self._current = defaultdict(list)
        self._open = {}
        self._iteration_start = None
        self.started = None  # wall clock at the start of the run (before its first iteration)
        self.first_iteration_s = None
        self.timed_wall_s = None
        self._timed_start = None
        self.peak_memory = None

    @property
    def finished(self):
        return self.done >= self.total

    def start_run(self):
        self.started = time.perf_counter()
        self._iteration_start = self.clock.mark()

    def begin(self, part):
        self._open[part] = self.clock.mark()

    def end(self, part):
        start = self._open.pop(part, None)
        if start is not None:
            self._current[part].append((start, self.clock.mark()))

    def is_open(self, part):
        return part in self._open

    def add(self, part, start, end):
        """A span of ``part`` between two marks taken elsewhere."""
        self._current[part].append((start, end))

    def pop_open(self, part):
        """The start mark of ``part``'s open span, which is closed by the caller (with :meth:`add`)."""
        return self._open.pop(part)

    def data_ready(self):
        """The batch is in hand: the iteration so far was spent waiting for data."""
        self.add('data', self._iteration_start, self.clock.mark())

    def note_memory(self):
        """Keep the peak memory of a timed iteration. Read before mmengine's logger, which resets the peak whenever
        it logs the memory."""
        if self.device.type == 'cuda' and self.done >= self.warmup:
            self.peak_memory = max(self.peak_memory or 0, torch.cuda.max_memory_allocated(self.device))

    def close_iteration(self):
        """The end of an iteration; returns its index."""
        end = self.clock.mark()
        self.spans.append((dict(self._current), (self._iteration_start, end)))
        self._current = defaultdict(list)
        self._open.clear()
        self._iteration_start = end
        index = self.done
        self.done += 1
        if index == 0:
            self.clock.synchronize()
            self.first_iteration_s = time.perf_counter() - self.started
        if index == self.warmup - 1:
            self.clock.synchronize()
            if self.device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(self.device)
            self._timed_start = time.perf_counter()
        if index == self.total - 1:
            self.clock.synchronize()
            self.timed_wall_s = time.perf_counter() - self._timed_start
        return index

    def _durations(self, spans):
        return sum(self.clock.ms(start, end) for start, end in spans)

    def summary(self, batch_size, compiled_backbone=False):
        """Throughput, memory and the mean breakdown (ms) of the timed iterations."""
        if not self.finished:
            raise RuntimeError(f'the run ended after {self.done} of {self.total} iterations')
        self.clock.synchronize()
        steps, parts = [], defaultdict(float)
        for spans, (start, end) in self.spans[self.warmup:]:
            step = self.clock.ms(start, end)
            measured = {part: self._durations(spans.get(part, ())) for part in
                        ('data', 'preprocess', 'backbone_forward', 'backbone_backward', 'train_step', 'optimizer',
                         'ema', 'hook_calls')}
            iteration = dict(
                data=measured['data'],
                preprocess=measured['preprocess'],
                backbone_forward=measured['backbone_forward'],
                backbone_backward=measured['backbone_backward'],
                model_rest=measured['train_step'] - measured['preprocess'] - measured['backbone_forward'] -
                measured['backbone_backward'] - measured['optimizer'],
                optimizer=measured['optimizer'],
                ema=measured['ema'],
                hooks=measured['hook_calls'] - measured['ema'],
            )
            iteration['remainder'] = step - sum(iteration.values())
            steps.append(step)
            for part, value in iteration.items():
                parts[part] += value / self.iterations
        breakdown = {part: parts[part] for part in PARTS}
        if compiled_backbone:
            breakdown['backbone_forward'] = breakdown['backbone_backward'] = None
        wall_step_s = self.timed_wall_s / self.iterations
        return dict(
            images_per_s=batch_size / wall_step_s,
            iterations_per_s=1 / wall_step_s,
            step_ms=sum(steps) / len(steps),
            wall_step_ms=wall_step_s * 1e3,
            peak_memory_gb=None if self.peak_memory is None else self.peak_memory / 2**30,
            first_iteration_s=self.first_iteration_s,
            breakdown_ms=breakdown,
        )


class BackboneProbe:
    """Times a backbone's forward and backward through hooks, leaving the computation as it is.

    The forward runs from the pre-hook of ``first`` to the hook of ``last``; the backward from the first gradient
    that reaches an output of ``last`` to the accumulation of the last gradient of ``parameters`` (the stem's, which
    autograd reaches last). How many parameters receive a gradient is learnt in the first iteration.
    """

    def __init__(self, recorder, first, last, parameters):
        self.recorder = recorder
        self.parameters = [parameter for parameter in parameters if parameter.requires_grad]
        self.expected = None
        self.arrived = 0
        self.handles = [first.register_forward_pre_hook(self._forward_start),
                        last.register_forward_hook(self._forward_end)]
        self.handles += [parameter.register_post_accumulate_grad_hook(self._gradient_accumulated)
                         for parameter in self.parameters]

    def _forward_start(self, module, inputs):
        self.recorder.begin('backbone_forward')

    def _forward_end(self, module, inputs, outputs):
        self.recorder.end('backbone_forward')
        tensors = outputs if isinstance(outputs, (tuple, list)) else (outputs, )
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
                tensor.register_hook(self._gradient_at_output)

    def _gradient_at_output(self, grad):
        if not self.recorder.is_open('backbone_backward'):
            self.arrived = 0
            self.recorder.begin('backbone_backward')

    def _gradient_accumulated(self, parameter):
        if not self.recorder.is_open('backbone_backward'):
            return
        self.arrived += 1
        if self.expected is None:
            # First iteration: the end moves with every gradient, and the count is learnt.
            self._last = self.recorder.clock.mark()
        elif self.arrived == self.expected:
            self._close(self.recorder.clock.mark())

    def _close(self, end):
        self.recorder.add('backbone_backward', self.recorder.pop_open('backbone_backward'), end)

    def iteration_ended(self):
        """Called before the recorder closes an iteration: fixes the gradient count after the first one."""
        if self.expected is None and self.recorder.is_open('backbone_backward'):
            self.expected = self.arrived
            self._close(self._last)

    def remove(self):
        for handle in self.handles:
            handle.remove()


def _wrap(owner, name, recorder, part):
    """Replace ``owner.name`` (a bound method) by one that records its call as a span of ``part``."""
    method = getattr(owner, name)

    def timed(*args, **kwargs):
        recorder.begin(part)
        try:
            return method(*args, **kwargs)
        finally:
            recorder.end(part)

    setattr(owner, name, timed)


def _time_module(module, recorder, part):
    module.register_forward_pre_hook(lambda *_: recorder.begin(part))
    module.register_forward_hook(lambda *_: recorder.end(part))


class RunnerProfiler:
    """Instruments a built mmengine Runner: the loop's hook calls, ``train_step``, the data preprocessor, the
    backbone, the optimizer wrapper's ``step`` and the EMA hook."""

    def __init__(self, runner, recorder, backbone_probe=True):
        self.runner = runner
        self.recorder = recorder
        self.backbone_probe = backbone_probe
        self.probe = None
        self.ema_hooks = []
        call_hook = runner.call_hook

        def profiled_call_hook(fn_name, **kwargs):
            if fn_name == 'before_train':
                call_hook(fn_name, **kwargs)
                self._instrument()
                recorder.start_run()
                return
            if fn_name not in ('before_train_iter', 'after_train_iter'):
                return call_hook(fn_name, **kwargs)
            if fn_name == 'before_train_iter':
                recorder.data_ready()
            else:
                recorder.note_memory()
            recorder.begin('hook_calls')
            call_hook(fn_name, **kwargs)
            recorder.end('hook_calls')
            if fn_name == 'after_train_iter':
                if self.probe is not None:
                    self.probe.iteration_ended()
                recorder.close_iteration()

        runner.call_hook = profiled_call_hook

    def _instrument(self):
        from mmengine.hooks import EMAHook
        from mmengine.model import is_model_wrapper
        from mmengine.optim import OptimWrapperDict

        runner, recorder = self.runner, self.recorder
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        _wrap(runner.model, 'train_step', recorder, 'train_step')
        _time_module(model.data_preprocessor, recorder, 'preprocess')
        backbone = getattr(model, 'backbone', None)
        if self.backbone_probe and backbone is not None:
            self.probe = BackboneProbe(recorder, backbone, backbone, backbone.parameters())
        wrappers = (runner.optim_wrapper.values() if isinstance(runner.optim_wrapper, OptimWrapperDict) else
                    [runner.optim_wrapper])
        for wrapper in wrappers:
            _wrap(wrapper, 'step', recorder, 'optimizer')
        self.ema_hooks = [hook for hook in runner.hooks if isinstance(hook, EMAHook)]
        for hook in self.ema_hooks:
            _wrap(hook, 'after_train_iter', recorder, 'ema')


def _type_name(transform):
    kind = transform.get('type', '')
    kind = kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
    return kind.split('.')[-1]


def _leaf_dataset(dataset):
    while 'dataset' in dataset and isinstance(dataset['dataset'], dict):
        dataset = dataset['dataset']
    return dataset


def training_pipeline(cfg):
    """The config's training pipeline without its file-reading transforms."""
    pipeline = _leaf_dataset(cfg.train_dataloader.dataset).get('pipeline', [])
    return [transform for transform in pipeline if _type_name(transform) not in LOADING_TRANSFORMS]


def _head_classes(cfg, *keys):
    node = cfg.model
    for key in keys:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, int) else None


def synthetic_dataset(cfg, num_samples):
    """The in-memory dataset of the config's task, sized for ``num_samples`` and running its training pipeline."""
    scope = cfg.get('default_scope')
    pipeline = training_pipeline(cfg)
    if scope == 'mmpretrain':
        classes = _head_classes(cfg, 'head', 'num_classes') or 1000
        return dict(type='SyntheticImageNet', num_samples=num_samples, num_classes=classes, pipeline=pipeline)
    if scope == 'mmdet':
        classes = _head_classes(cfg, 'roi_head', 'bbox_head', 'num_classes') or 80
        return dict(type='SyntheticCocoInstances', num_samples=num_samples, num_classes=classes, pipeline=pipeline)
    if scope == 'mmseg':
        classes = _head_classes(cfg, 'decode_head', 'num_classes') or 150
        return dict(type='SyntheticSegmentation', num_samples=num_samples, num_classes=classes, pipeline=pipeline)
    raise ValueError(f"benchmark_train drives mmpretrain, mmdet and mmseg configs, not default_scope={scope!r}")


def _drop_pretrained(node):
    """Remove every ``Pretrained`` init_cfg: speed does not depend on the weights, and nothing is downloaded."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        elif isinstance(init_cfg, list):
            node['init_cfg'] = [item for item in init_cfg if item.get('type') != 'Pretrained'] or None
        for value in node.values():
            _drop_pretrained(value)
    elif isinstance(node, list):
        for value in node:
            _drop_pretrained(value)


def benchmark_cfg(cfg, iterations, warmup, amp=False, compile=None, batch_size=None, work_dir=None, tag='vmamba_mm',
                  launcher='none'):
    """The config adapted for a benchmark run: synthetic data for exactly ``warmup + iterations`` steps, no
    validation, no checkpoint files, no pretrained weights; everything else (model, optimizer wrapper, schedules,
    hooks, logging, environment) as the config has it. ``amp`` and ``compile`` act as tools/train.py's ``--amp``
    and the config's ``compile`` (None keeps the config's choice). Under a ``launcher`` (tools/train.py's
    ``--launcher``) every process runs the steps, each on its own ``batch_size`` images."""
    from vmamba_mm import launch

    launch.register_scope(cfg)
    if amp:
        launch.enable_amp(cfg)
    launch.amp_on_cpu(cfg)
    if compile is not None:
        # --compile keeps a config's torch.compile arguments; 'auto' would not compile on a CPU.
        cfg.compile = (cfg.compile if isinstance(cfg.get('compile'), dict) else True) if compile else False
    if batch_size is not None:
        cfg.train_dataloader.batch_size = batch_size
    steps = warmup + iterations
    # One epoch of exactly `steps` full batches in each process (also through mmdet's aspect-ratio batch sampler,
    # whose leftovers then fill whole batches), or `steps` iterations of an iteration-based loop.
    cfg.train_dataloader.dataset = synthetic_dataset(
        cfg, steps * cfg.train_dataloader.batch_size * launch.world_size(launcher))
    if 'max_iters' in cfg.train_cfg:
        cfg.train_cfg.max_iters = steps
    else:
        cfg.train_cfg.max_epochs = 1
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    _drop_pretrained(cfg.model)
    cfg.load_from, cfg.resume = None, False
    cfg.launcher = launcher
    # mmengine names its global logger and visualizer after the experiment: one name per run in this process.
    cfg.experiment_name = f'benchmark_train_{tag}_{next(_RUN_NUMBERS)}'
    if cfg.get('visualizer') is not None:  # the det/seg runtimes name theirs 'visualizer'
        cfg.visualizer.name = cfg.experiment_name
    if work_dir is not None:
        cfg.work_dir = work_dir
    return cfg


def official_backbone_kwargs(arch, drop_path_rate=0.0, out_indices=None, with_cp=False):
    """The official constructor arguments of the VMamba ``arch`` (an arch_zoo name or dict)."""
    from vmamba_mm.models import VMamba

    settings = VMamba.parse_arch(arch)
    design = 'vanilla' if settings.get('vanilla') else 'v2'
    kwargs = dict(depths=list(settings['depths']), dims=settings['dims'], ssm_d_state=settings['d_state'],
                  ssm_ratio=settings['ssm_ratio'], drop_path_rate=drop_path_rate, use_checkpoint=with_cp,
                  **OFFICIAL_DESIGNS[design])
    if out_indices is not None:
        kwargs.update(out_indices=tuple(out_indices), pretrained=None)
    return kwargs


def official_module(source):
    """The official classification/models/vmamba.py under ``source`` (its dependencies installed)."""
    from vmamba_mm.analysis.measured_models import _official_module

    return _official_module(source)


def official_source():
    """``$VMAMBA_OFFICIAL_SRC``, checked; raises :class:`OfficialSourceMissing` in one line otherwise."""
    source = os.environ.get(OFFICIAL_ENV)
    if not source:
        raise OfficialSourceMissing(f'--official needs {OFFICIAL_ENV} pointing at a checkout of the official VMamba '
                                    f'repository (github.com/MzeroMiko/VMamba); it is not set')
    if not os.path.isfile(os.path.join(source, 'classification', 'models', 'vmamba.py')):
        raise OfficialSourceMissing(f'{OFFICIAL_ENV}={source} is not a checkout of the official VMamba repository '
                                    f'(no classification/models/vmamba.py)')
    return source


def register_official_backbone(module, scope):
    """Register the official dense backbone (its ``Backbone_VSSM`` as an mmengine module, the way its
    detection/segmentation ``MM_VSSM`` is made) in the scope's MODELS under :data:`OFFICIAL_BACKBONE`."""
    import importlib

    from mmengine.model import BaseModule

    official_class = module.Backbone_VSSM

    class OfficialBackbone(BaseModule, official_class):

        def __init__(self, **kwargs):
            BaseModule.__init__(self)
            official_class.__init__(self, **kwargs)

    OfficialBackbone.__name__ = OFFICIAL_BACKBONE
    registry = importlib.import_module(f'{scope}.registry').MODELS
    registry.register_module(name=OFFICIAL_BACKBONE, module=OfficialBackbone, force=True)
    return OfficialBackbone


def swap_in_official_backbone(cfg, module):
    """Replace the config's VMamba backbone by the official one of the same arch and training settings."""
    backbone = cfg.model.backbone
    if backbone.get('type') != 'VMamba':
        raise ValueError(f"--official swaps the official backbone in for VMamba, but the config's backbone is "
                         f"{backbone.get('type')!r}")
    register_official_backbone(module, cfg.default_scope)
    cfg.model.backbone = dict(type=OFFICIAL_BACKBONE, **official_backbone_kwargs(
        backbone.get('arch', 'tiny'), backbone.get('drop_path_rate', 0.0), backbone.get('out_indices', (0, 1, 2, 3)),
        backbone.get('with_cp', False)))
    return cfg


def _precision(optim_wrapper):
    from mmengine.optim import AmpOptimWrapper

    from vmamba_mm.engine import CPUAutocastOptimWrapper

    if isinstance(optim_wrapper, AmpOptimWrapper):
        return {torch.bfloat16: 'bf16', None: 'fp16', torch.float16: 'fp16'}.get(optim_wrapper.cast_dtype, 'fp16')
    if isinstance(optim_wrapper, CPUAutocastOptimWrapper):
        return {torch.bfloat16: 'bf16', torch.float16: 'fp16'}[optim_wrapper.cast_dtype]
    return 'fp32'


def _settings_of(runner, profiler):
    """What ran: the optimizer wrapper and optimizer, clipping, AMP, EMA, hooks, compile, cuDNN autotuning."""
    from mmengine.optim import AmpOptimWrapper

    from vmamba_mm.engine import compile_options_of

    wrapper = runner.optim_wrapper
    hub = runner.message_hub
    grad_norm = hub.get_scalar('train/grad_norm').current() if 'train/grad_norm' in hub.log_scalars else None
    ema = [dict(hook=type(hook).__name__, momentum=hook.ema_model.momentum, steps=int(hook.ema_model.steps))
           for hook in profiler.ema_hooks]
    optimizer = wrapper.optimizer
    return dict(
        optim_wrapper=type(wrapper).__name__,
        optimizer=type(optimizer).__name__,
        lr=[group['lr'] for group in optimizer.param_groups][:1],
        param_groups=len(optimizer.param_groups),
        clip_grad=dict(wrapper.clip_grad_kwargs) if wrapper.clip_grad_kwargs else None,
        last_grad_norm=grad_norm,
        loss_scale=float(wrapper.loss_scaler.get_scale()) if isinstance(wrapper, AmpOptimWrapper) else None,
        ema=ema,
        hooks=[type(hook).__name__ for hook in runner.hooks],
        compile=compile_options_of(runner.cfg, next(runner.model.parameters()).device.type),
        cudnn_benchmark=torch.backends.cudnn.benchmark,
        iterations_run=runner.iter,
    )


def benchmark_config(config, iterations=50, warmup=10, amp=False, compile=None, batch_size=None, cfg_options=None,
                     official=None, work_dir=None, launcher='none'):
    """Train ``config`` (a path) for ``warmup + iterations`` steps on synthetic data and time it.

    ``official`` is the official model module (see :func:`official_module`): its backbone replaces VMamba in the
    config. Under a ``launcher`` this is one process of a data-parallel run (see :func:`gather_rows`). Returns one
    result row (see :func:`format_table`)."""
    from vmamba_mm import launch

    cfg = launch.load_config(config, cfg_options)
    with contextlib.ExitStack() as stack:
        # mmengine switches cuDNN autotuning on for configs that ask for it and never off: the next run in this
        # process starts from torch's setting again.
        stack.callback(setattr, torch.backends.cudnn, 'benchmark', torch.backends.cudnn.benchmark)
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix='benchmark_train_'))
        tag = 'official' if official is not None else 'vmamba_mm'
        cfg = benchmark_cfg(cfg, iterations, warmup, amp, compile, batch_size, work_dir, tag, launcher)
        if official is not None:
            swap_in_official_backbone(cfg, official)
        build_start = time.perf_counter()
        runner = launch.build_runner(cfg)
        device = next(runner.model.parameters()).device
        recorder = StepRecorder(device, warmup, iterations)
        compiled = launch.compile_options_of(cfg, device.type) is not None
        profiler = RunnerProfiler(runner, recorder, backbone_probe=not compiled)
        runner.train()
        if not recorder.finished:
            raise RuntimeError(f'training stopped after {recorder.done} of {recorder.total} iterations')
        row = dict(task=cfg.default_scope, config=config, model=tag, precision=_precision(runner.optim_wrapper),
                   batch_size=cfg.train_dataloader.batch_size, iterations=iterations, warmup=warmup,
                   setup_s=recorder.started - build_start,
                   **recorder.summary(cfg.train_dataloader.batch_size, compiled_backbone=compiled))
        hub = runner.message_hub
        row['data_time_mmengine_ms'] = (hub.get_scalar('train/data_time').mean(iterations) * 1e3
                                        if 'train/data_time' in hub.log_scalars else None)
        row['settings'] = _settings_of(runner, profiler)
        del runner, profiler
        _release_memory(device)
    return row


def _release_memory(device):
    gc.collect()
    if torch.device(device).type == 'cuda':
        torch.cuda.empty_cache()


# The official classification loop


class _Untimed:
    """Stands in for a :class:`StepRecorder` where nothing is timed."""

    def begin(self, part):
        pass

    def end(self, part):
        pass


class OfficialTrainStep:
    """One iteration of the official ``train_one_epoch`` (classification/main.py, no gradient accumulation).

    In order: the batch to the device; ``mixup`` (timm's ``Mixup``, or None); the forward under ``autocast`` and the
    loss outside it; backward through ``scaler`` (a GradScaler, as the official ``NativeScalerWithGradNormCount``;
    a disabled one passes everything through, as the official one does without CUDA); unscaling and
    ``clip_grad_norm_`` to ``clip_grad`` over all parameters (None: the norm is computed and nothing clipped); the
    scaler's step and update; ``zero_grad``; ``lr_scheduler.step_update`` with the index of the step just taken
    (timm's per-iteration schedulers); the EMA update (timm's ``ModelEma``, or None); the loss scale read back, a
    device synchronisation and the loss read back, as the official log does. Returns the loss (a float) and the
    gradient norm before clipping.

    Built once, called for each step: the official recipe's optimizer, schedule and EMA come from the caller (the
    benchmark rebuilds them from a config; the recipe-parity test takes the official builders themselves). A
    ``recorder`` (:class:`StepRecorder`) times the parts for the benchmark's breakdown.
    """

    def __init__(self, model, criterion, optimizer, lr_scheduler, scaler, clip_grad=None, model_ema=None, mixup=None,
                 autocast=None, recorder=None):
        self.model, self.criterion, self.optimizer = model, criterion, optimizer
        self.lr_scheduler, self.scaler, self.clip_grad = lr_scheduler, scaler, clip_grad
        self.model_ema, self.mixup = model_ema, mixup
        self.autocast = autocast if autocast is not None else contextlib.nullcontext()
        self.recorder = recorder if recorder is not None else _Untimed()
        self.device = next(model.parameters()).device

    def _grad_norm(self):
        parameters = [parameter for parameter in self.model.parameters() if parameter.grad is not None]
        if self.clip_grad is not None:
            return torch.nn.utils.clip_grad_norm_(parameters, self.clip_grad)
        return torch.norm(torch.stack([torch.norm(parameter.grad.detach(), 2.0) for parameter in parameters]), 2.0)

    def __call__(self, index, samples, targets):
        recorder = self.recorder
        recorder.begin('train_step')
        recorder.begin('preprocess')
        samples = samples.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        if self.mixup is not None:
            samples, targets = self.mixup(samples, targets)
        recorder.end('preprocess')
        with self.autocast:
            outputs = self.model(samples)
        loss = self.criterion(outputs, targets)
        self.scaler.scale(loss).backward()
        recorder.begin('optimizer')
        self.scaler.unscale_(self.optimizer)
        grad_norm = self._grad_norm()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        recorder.end('optimizer')
        recorder.end('train_step')
        self.optimizer.zero_grad()
        recorder.begin('hook_calls')
        self.lr_scheduler.step_update(index)
        recorder.begin('ema')
        if self.model_ema is not None:
            self.model_ema.update(self.model)
        recorder.end('ema')
        self.scaler.state_dict()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        loss = loss.item()
        recorder.end('hook_calls')
        return loss, float(grad_norm)


def official_param_groups(model):
    """The official ``set_weight_decay`` groups: no weight decay for 1-D parameters, for names ending in ``.bias``
    and for what the model's ``no_weight_decay()`` / ``no_weight_decay_keywords()`` name; the rest decays."""
    skip = model.no_weight_decay() if hasattr(model, 'no_weight_decay') else set()
    keywords = model.no_weight_decay_keywords() if hasattr(model, 'no_weight_decay_keywords') else set()
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        exempt = (parameter.ndim == 1 or name.endswith('.bias') or name in skip
                  or any(keyword in name for keyword in keywords))
        (no_decay if exempt else decay).append(parameter)
    return [dict(params=decay), dict(params=no_decay, weight_decay=0.0)]


def _official_collate(mean, std):
    """Stack packed uint8 CHW images and labels into a normalised float batch, as timm's ToTensor + Normalize
    hand it to the official loop."""
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)

    def collate(samples):
        images = torch.stack([sample['inputs'] for sample in samples]).float()
        labels = torch.tensor([int(sample['data_samples'].gt_label) for sample in samples])
        return (images - mean) / std, labels

    return collate


def benchmark_official_classification(config, module, iterations=50, warmup=10, amp=True, batch_size=None,
                                      cfg_options=None, device=None):
    """The official classifier of the config's arch in a loop doing what the official ``train_one_epoch`` does
    (:class:`OfficialTrainStep`).

    The recipe is rebuilt from the config the way the official ``main.py`` builds it: timm's Mixup/CutMix (the
    config's alphas, switch probability 0.5, label smoothing folded into the soft targets) with the soft-target
    cross-entropy; AdamW with the official parameter groups (:func:`official_param_groups`) and the config's learning
    rate, betas, eps and weight decay; the official per-step schedule (timm's cosine with a linear warm-up prefix,
    here over the ``warmup`` steps and then the rest of the run); timm's ``ModelEma``; cuDNN autotuning on, as
    ``main.py`` sets it. The data are the same in-memory images through the config's pipeline, normalised on the CPU
    as the official loader does. On a CPU, autocast runs in bfloat16 without loss scaling.
    """
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy
    from timm.scheduler import CosineLRScheduler
    from timm.utils import ModelEma
    from torch.utils.data import DataLoader

    from vmamba_mm import launch
    from vmamba_mm.datasets import SyntheticImageNet

    cfg = launch.load_config(config, cfg_options)
    if cfg.get('default_scope') != 'mmpretrain':
        raise ValueError(f'the official classification loop takes a classification config, not {config}')
    launch.register_scope(cfg)
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    batch_size = batch_size or cfg.train_dataloader.batch_size
    steps = warmup + iterations
    backbone, head = cfg.model.backbone, cfg.model.head
    num_classes = head.num_classes

    model = module.VSSM(num_classes=num_classes, **official_backbone_kwargs(
        backbone.get('arch', 'tiny'), backbone.get('drop_path_rate', 0.0), with_cp=backbone.get('with_cp', False)))
    model.to(device)
    ema_hooks = [hook for hook in cfg.get('custom_hooks', []) if hook.get('type') == 'EMAHook']
    ema_decay = 1 - ema_hooks[0].get('momentum', 2e-4) if ema_hooks else 0.9999
    model_ema = ModelEma(model, decay=ema_decay, device='', resume='')

    optimizer_cfg = cfg.optim_wrapper.optimizer
    optimizer = torch.optim.AdamW(official_param_groups(model), lr=optimizer_cfg.lr,
                                  eps=optimizer_cfg.get('eps', 1e-8),
                                  betas=tuple(optimizer_cfg.get('betas', (0.9, 0.999))),
                                  weight_decay=optimizer_cfg.get('weight_decay', 0.05))
    clip = (cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm')
    scheduler = CosineLRScheduler(optimizer, t_initial=iterations, lr_min=optimizer_cfg.lr * 1e-2, warmup_t=warmup,
                                  warmup_lr_init=optimizer_cfg.lr * 1e-3, warmup_prefix=True, cycle_limit=1,
                                  t_in_epochs=False)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype == torch.float16)

    augments = {augment['type']: augment for augment in cfg.model.get('train_cfg', {}).get('augments', [])}
    smoothing = head.get('loss', {}).get('label_smooth_val', 0.0)
    mixup = Mixup(mixup_alpha=augments.get('Mixup', {}).get('alpha', 0.0),
                  cutmix_alpha=augments.get('CutMix', {}).get('alpha', 0.0), prob=1.0, switch_prob=0.5, mode='batch',
                  label_smoothing=smoothing, num_classes=num_classes) if augments else None

    dataset = SyntheticImageNet(num_samples=steps * batch_size, num_classes=num_classes,
                                pipeline=training_pipeline(cfg))
    preprocessor = cfg.get('data_preprocessor') or cfg.model.get('data_preprocessor') or {}
    mean, std = preprocessor.get('mean', (123.675, 116.28, 103.53)), preprocessor.get('std', (58.395, 57.12, 57.375))
    loader_cfg = cfg.train_dataloader
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=loader_cfg.get('num_workers', 0),
                        pin_memory=device.type == 'cuda', drop_last=True, collate_fn=_official_collate(mean, std))

    saved_cudnn = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = True  # main.py sets both
    recorder = StepRecorder(device, warmup, iterations)
    train_step = OfficialTrainStep(model, SoftTargetCrossEntropy(), optimizer, scheduler, scaler, clip_grad=clip,
                                   model_ema=model_ema, mixup=mixup,
                                   autocast=torch.autocast(device.type, dtype=amp_dtype, enabled=amp),
                                   recorder=recorder)
    stem_and_stages = [*model.patch_embed.parameters(), *model.layers.parameters()]
    probe = BackboneProbe(recorder, model.patch_embed, model.layers[-1], stem_and_stages)
    losses = []
    try:
        model.train()
        optimizer.zero_grad()
        batches = iter(loader)
        recorder.start_run()
        for index in range(steps):
            samples, targets = next(batches)
            recorder.data_ready()
            loss, _ = train_step(index, samples, targets)
            losses.append(loss)
            probe.iteration_ended()
            recorder.note_memory()
            recorder.close_iteration()
    finally:
        probe.remove()
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved_cudnn
    row = dict(task='mmpretrain', config=config, model='official', precision=('fp16' if amp_dtype == torch.float16
                                                                              else 'bf16') if amp else 'fp32',
               batch_size=batch_size, iterations=iterations, warmup=warmup, setup_s=None,
               **recorder.summary(batch_size), data_time_mmengine_ms=None)
    row['settings'] = dict(optim_wrapper='official loop (GradScaler)' if scaler.is_enabled() else 'official loop',
                           optimizer=type(optimizer).__name__, lr=[optimizer.param_groups[0]['lr']],
                           param_groups=len(optimizer.param_groups), clip_grad=dict(max_norm=clip) if clip else None,
                           loss_scale=float(scaler.get_scale()) if scaler.is_enabled() else None,
                           ema=[dict(hook='timm.utils.ModelEma', decay=ema_decay, steps=steps)],
                           mixup=mixup is not None, cudnn_benchmark=True, cudnn_deterministic=True,
                           last_loss=losses[-1], iterations_run=len(losses))
    del model, model_ema, optimizer
    _release_memory(device)
    return row


# Reporting


def environment(device=None):
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    info = dict(torch=torch.__version__, cuda=torch.version.cuda, device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def _cell(value, digits=1):
    return '-' if value is None else f'{value:.{digits}f}'


def format_table(rows, env):
    """The result table: task, model, precision, throughput, peak memory, first-iteration time, breakdown (ms)."""
    header = (f"# {env.get('gpu', env['device'])} | torch {env['torch']} | CUDA {env['cuda']} | breakdown: mean ms "
              f"per timed iteration\n"
              f"{'task':<11} {'model':<10} {'prec':>5} {'batch':>5} {'img/s':>9} {'mem GB':>7} {'1st it s':>8} "
              f"{'step':>8} " + ' '.join(f'{part[:10]:>10}' for part in PARTS))
    lines = [header]
    for row in rows:
        parts = ' '.join(f'{_cell(row["breakdown_ms"][part]):>10}' for part in PARTS)
        lines.append(f"{row['task']:<11} {row['model']:<10} {row['precision']:>5} {row['batch_size']:>5} "
                     f"{row['images_per_s']:>9.1f} {_cell(row['peak_memory_gb'], 2):>7} "
                     f"{row['first_iteration_s']:>8.1f} {row['step_ms']:>8.1f} {parts}")
    return '\n'.join(lines)


# Distributed runs


class BaselineError(ValueError):
    """``--baseline-json`` names no one-process result of the same benchmark."""


def gather_rows(row):
    """Every process's result row, in rank order, each with its ``rank``: the rows of a data-parallel run, on every
    process. Without a process group, the one row, as rank 0's."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [dict(row, rank=0)]
    rows = [None] * dist.get_world_size()
    dist.all_gather_object(rows, dict(row, rank=dist.get_rank()))
    return rows


def read_baseline(path, config, batch_size, amp, compile):
    """The result row of the one-process run that ``path`` (a ``--out`` JSON of this tool) holds, checked to be the
    same benchmark: the same config file name, images per process, ``--amp`` and ``--compile``."""
    import json

    try:
        with open(path) as file:
            report = json.load(file)
        row, args = report['rows'][0], report['args']
        images_per_s = row['images_per_s']
    except OSError as error:
        raise BaselineError(f'--baseline-json {path}: {error.strerror or error}') from error
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise BaselineError(f'--baseline-json {path} is not a JSON that benchmark_train.py --out wrote') from error
    if report.get('distributed', {}).get('world_size', 1) != 1:
        raise BaselineError(f'--baseline-json {path} holds a run of {report["distributed"]["world_size"]} processes; '
                            f'the baseline is a run of one (without a launcher)')
    ours = dict(config=os.path.basename(config), batch_size=batch_size, amp=amp, compile=compile)
    theirs = dict(config=os.path.basename(row.get('config', '')), batch_size=row.get('batch_size'),
                  amp=args.get('amp'), compile=args.get('compile'))
    differences = [f'{key} {theirs[key]!r} there, {ours[key]!r} here' for key in ours if ours[key] != theirs[key]]
    if differences:
        raise BaselineError(f'--baseline-json {path} measured another benchmark: ' + '; '.join(differences))
    if not isinstance(images_per_s, (int, float)) or not images_per_s > 0:
        raise BaselineError(f'--baseline-json {path}: its throughput is {images_per_s!r} images/s')
    return row


def scaling_summary(rows, baseline=None):
    """Throughput of a data-parallel run from its processes' rows (:func:`gather_rows`).

    The processes step together (DDP averages the gradients in every step), so the run moves at the pace of its
    slowest process: the total throughput is all processes' images per step over the slowest mean step time.
    Against a one-process ``baseline`` row of the same batch per process: the speed-up (total over one process)
    and the scaling efficiency (speed-up over the number of processes; 1.0 is linear scaling)."""
    world_size = len(rows)
    slowest_step_s = max(row['wall_step_ms'] for row in rows) / 1e3
    total = sum(row['batch_size'] for row in rows) / slowest_step_s
    summary = dict(world_size=world_size, per_process_images_per_s=[row['images_per_s'] for row in rows],
                   total_images_per_s=total, baseline_images_per_s=None, speedup=None, scaling_efficiency=None)
    if baseline is not None:
        summary.update(baseline_images_per_s=baseline['images_per_s'], speedup=total / baseline['images_per_s'],
                       scaling_efficiency=total / baseline['images_per_s'] / world_size)
    return summary


def format_scaling(summary):
    """The lines under the table of a data-parallel run."""
    per_process = ', '.join(f'{value:.1f}' for value in summary['per_process_images_per_s'])
    lines = [f"# {summary['world_size']} processes: {summary['total_images_per_s']:.1f} img/s in total; "
             f'per process (by rank): {per_process}']
    if summary['baseline_images_per_s'] is not None:
        lines.append(f"# 1 process: {summary['baseline_images_per_s']:.1f} img/s; speed-up {summary['speedup']:.2f}x, "
                     f"scaling efficiency {summary['scaling_efficiency']:.1%}")
    return '\n'.join(lines)
