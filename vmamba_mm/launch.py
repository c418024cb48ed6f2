"""What `tools/train.py` and `tools/test.py` share: turning command-line arguments into a checked config.

Everything here fails before a run starts, with an error that names what to fix, and leaves the
files of earlier runs as they are. `run_tool` runs a tool's Runner; `process_group_closed` and `run_as_program`
end a distributed run.
"""
import argparse
import atexit
import contextlib
import difflib
import importlib
import importlib.util
import os
import os.path as osp
import shlex
import sys
import tempfile
import threading

import torch

from .datasets import BadAnnotationError, LabelOutOfRangeError, UnreadableImageError
from .engine import (CheckpointSaveError, LauncherEnvironmentError, NonFiniteLossError, ResumeError, StrictRunner,
                     compile_options_of)
from .engine.runner import SCOPE_TASKS
from .loading import CheckpointError, IncompatibleCheckpointError


class ConfigFileError(ValueError):
    """The config file is not a vmamba_mm (mmengine) config: another format, or the official repo's yacs file."""


class ConfigScopeError(ValueError):
    """The config names no `default_scope`, or one that vmamba_mm does not drive."""


class WorkDirError(OSError):
    """The work directory cannot be written, or holds a run that starting afresh would overwrite."""


def parse_with_launcher(parser, argv=None):
    """Add the launcher options both tools share, parse, and export LOCAL_RANK for mmengine."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher: none (one process), pytorch (torchrun), slurm (srun) or mpi')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


# The exceptions the tools report as one line (what the user got wrong), without a traceback.
USER_ERRORS = (FileNotFoundError, ConfigFileError, ConfigScopeError, WorkDirError, CheckpointError,
               LauncherEnvironmentError, ValueError)
# Errors that stop a run with a message saying where and what to do: reported as one line too.
RUN_ERRORS = (CheckpointError, IncompatibleCheckpointError, CheckpointSaveError, NonFiniteLossError, ResumeError,
              UnreadableImageError, BadAnnotationError, LabelOutOfRangeError)


# Top-level keys that mmengine's Runner or the mm* tools read. A config may hold other top-level names
# (data_root, pipelines, helper values), but one spelled almost like these is a typo the Runner would ignore.
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg',
    'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator', 'default_hooks',
    'custom_hooks', 'data_preprocessor', 'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name', 'runner_type', 'compile', 'custom_imports',
    'model_wrapper_cfg', 'tta_model', 'tta_pipeline', 'train_pipeline', 'val_pipeline', 'test_pipeline',
    'activation_checkpointing', 'efficient_conv_bn_eval')


def check_top_level_keys(cfg, path):
    """Raise ConfigFileError for a top-level key that is a misspelling of one the Runner reads."""
    for key in cfg.keys():
        if key in RUNNER_KEYS:
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.85)
        if close:
            raise ConfigFileError(f"config {path}: unknown top-level key '{key}' (did you mean '{close[0]}'?); "
                                  f'as written it would be ignored')


def load_config(path, cfg_options=None):
    """Read an mmengine config file and apply `--cfg-options` overrides."""
    from mmengine.config import Config

    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    suffix = osp.splitext(path)[1]
    if suffix not in ('.py', '.json', '.yml', '.yaml'):
        raise ConfigFileError(f"config file {path}: vmamba_mm configs are Python files (.py), got '{suffix}'")
    try:
        cfg = Config.fromfile(path)
    except TypeError as error:  # mmengine's merge with a base config: a dict over a value of another type
        raise ConfigFileError(f'config file {path}: {error}') from error
    if 'MODEL' in cfg and 'model' not in cfg:
        raise ConfigFileError(
            f'{path} is an official VMamba (yacs) config; use the matching configs/classification/vmamba-*.py '
            f'(official checkpoints load directly: tools/test.py CONFIG CHECKPOINT)')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_top_level_keys(cfg, path)
    return cfg


def register_scope(cfg):
    """Register the modules of the library the config is written for (its `default_scope`); returns it."""
    scope = cfg.get('default_scope')
    known = ', '.join(SCOPE_TASKS)
    if scope is None:
        raise ConfigScopeError(
            f'{cfg.filename} sets no default_scope; set it to one of {known} '
            f"(the task runtime files in configs/_base_/ do, e.g. default_runtime_cls.py sets 'mmpretrain')")
    if scope not in SCOPE_TASKS:
        raise ConfigScopeError(f"{cfg.filename} has default_scope='{scope}'; vmamba_mm drives {known}")
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=True)
    from . import registry  # noqa: F401 (VMamba into the library's MODELS)
    return scope


def resolve_work_dir(cfg, work_dir, config_path):
    """`--work-dir`, else the config's `work_dir`, else `work_dirs/<config name>`; made and probed for writing."""
    if work_dir is None:
        work_dir = cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])
    try:
        os.makedirs(work_dir, exist_ok=True)
        # os.access is no proof (root passes it on read-only mounts): write a real file.
        with tempfile.TemporaryFile(dir=work_dir):
            pass
    except OSError as error:
        raise WorkDirError(f'work dir {work_dir} is not writable: {error.strerror or error}') from error
    cfg.work_dir = work_dir
    return work_dir


def latest_checkpoint(work_dir):
    """The checkpoint mmengine's `last_checkpoint` file points to, or None when the work dir has none."""
    from mmengine.runner import find_latest_checkpoint

    return find_latest_checkpoint(work_dir) if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else None


def enable_amp(cfg):
    """`--amp`: automatic mixed precision with mmengine's AmpOptimWrapper (float16, dynamic loss scale)."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise ValueError(f'--amp switches OptimWrapper to AmpOptimWrapper, but the config uses {wrapper}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def amp_on_cpu(cfg):
    """Without an accelerator mmengine's AmpOptimWrapper cannot start: run its bfloat16 CPU counterpart.

    Returns True when the config was changed (the caller says so in the log)."""
    from mmengine.device import get_device

    if cfg.get('optim_wrapper', {}).get('type') != 'AmpOptimWrapper' or get_device() != 'cpu':
        return False
    from .engine.optim_wrapper import CPUAutocastOptimWrapper  # noqa: F401 (registers the type)

    cfg.optim_wrapper.type = 'CPUAutocastOptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)  # bfloat16 keeps float32's range: nothing to scale
    cfg.optim_wrapper.dtype = 'bfloat16'
    return True


def world_size(launcher):
    """How many processes the launcher started (1 without one), as mmengine will see it."""
    if launcher == 'none':
        return 1
    return int(os.environ.get('WORLD_SIZE') or os.environ.get('SLURM_NTASKS') or os.environ.get('OMPI_COMM_WORLD_SIZE') or 1)


# The visualization hook each task's runtime (configs/_base_/default_runtime_*.py) sets.
VISUALIZATION_HOOKS = {'mmpretrain': 'VisualizationHook', 'mmdet': 'DetVisualizationHook', 'mmseg': 'SegVisualizationHook'}


def enable_show_dir(cfg, show_dir):
    """`--show-dir DIR`: the task's visualization hook draws the prediction of every test image into DIR.

    Classification writes DIR/<image>_0.png and detection DIR/<image>, as their hooks name them. Segmentation's
    hook writes through the visualizer, whose folder becomes DIR as in mmseg's own tools/test.py: the pictures
    are DIR/vis_data/vis_image/test_<image>_0.png, beside the test's scalars. DIR is made absolute: mmdet's hook
    would otherwise put it under the run's log folder once per test batch, each time one level deeper."""
    scope = cfg.default_scope
    show_dir = osp.abspath(show_dir)
    hook = cfg.setdefault('default_hooks', {}).setdefault('visualization', dict(type=VISUALIZATION_HOOKS[scope]))
    if scope == 'mmpretrain':
        hook.update(enable=True, interval=1, out_dir=show_dir)
    elif scope == 'mmdet':
        hook.update(draw=True, interval=1, test_out_dir=show_dir)
    else:
        hook.update(draw=True, interval=1)
        cfg.visualizer.save_dir = show_dir
    # Visualizers are named instances of the process, and the hooks draw with the one made last: under the runtime's
    # fixed name, a runner built earlier in the same process would keep its own, of another task or writing
    # elsewhere. The Runner names this run's visualizer after the run.
    cfg.visualizer.pop('name', None)
    os.makedirs(show_dir, exist_ok=True)
    return show_dir


# `--vis-backend` choices: the mmengine visualization backend and the package it writes with.
VIS_BACKENDS = {'tensorboard': ('TensorboardVisBackend', 'tensorboard')}


def add_vis_backend(cfg, name):
    """`--vis-backend NAME`: the run's scalars (losses, learning rate, metrics) also go to this backend, beside the
    config's own; TensorBoard's event files land in the run's <work_dir>/<timestamp>/vis_data."""
    backend, package = VIS_BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise ValueError(f'--vis-backend {name} writes with the {package} package, which is not installed: '
                         f'pip install {package}')
    if 'visualizer' not in cfg:
        raise ValueError(f'--vis-backend {name} adds a backend to the config\'s visualizer, but {cfg.filename} sets '
                         'none (the task runtimes in configs/_base_/ do)')
    backends = cfg.visualizer.setdefault('vis_backends', [dict(type='LocalVisBackend')])
    if not any(entry.get('type') == backend for entry in backends):
        backends.append(dict(type=backend))


def build_runner(cfg):
    """The config's own `runner_type` when it names one, else vmamba_mm's `StrictRunner` (mmengine's Runner with
    strict, code-free checkpoint loading).

    mmengine's distributed set-up assumes GPUs; on a CPU-only host the process group (gloo) and the
    DDP wrapper are prepared here first."""
    from mmengine.registry import RUNNERS

    if cfg.get('launcher', 'none') != 'none' and not torch.cuda.is_available():
        from .engine.cpu_dist import setup_cpu_distributed
        setup_cpu_distributed(cfg, cfg.launcher)

    return RUNNERS.build(cfg) if 'runner_type' in cfg else StrictRunner.from_cfg(cfg)


# Set once process_group_closed has destroyed this process's process group: run_as_program then ends
# a successful run's process without interpreter finalization.
_destroyed_process_group = False


@contextlib.contextmanager
def process_group_closed():
    """Destroys the process group a distributed run opened when the run ends, however it ends.

    Destroying it is not enough to end a distributed tool's process safely: see `run_as_program`."""
    global _destroyed_process_group
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            _destroyed_process_group = True


def run_tool(make_config, run):
    """A tool's run: the Runner built from `make_config()`, then `run(runner)`, with the process group closed
    at the end. A mistake in the config or command line (`USER_ERRORS`) and a run stopped by one of
    `RUN_ERRORS` end the process with their one-line message instead of a traceback; so does Ctrl-C
    (`interrupted_message`), with exit status 130 as a shell reports an interrupted command."""
    cfg = None
    with process_group_closed():
        try:
            try:
                cfg = make_config()
                compile_options_of(cfg, 'cpu')  # a bad `compile` value is named now, not when training starts
                runner = build_runner(cfg)
            except USER_ERRORS as error:
                sys.exit(f'{type(error).__name__}: {error}')
            try:
                run(runner)
            except RUN_ERRORS as error:
                sys.exit(f'{type(error).__name__}: {error}')
        except KeyboardInterrupt:
            print(interrupted_message(cfg, sys.argv), file=sys.stderr)
            sys.exit(130)


def interrupted_message(cfg, argv):
    """The line a tool ends with on Ctrl-C. tools/train.py (`argv` is its command line) names the work dir's
    last complete checkpoint and the command that continues from it: the same command with `--resume`
    (instead of any `--resume CKPT`), which picks that checkpoint."""
    if cfg is None or osp.basename(argv[0]) != 'train.py':
        return 'interrupted'
    command, rest = [argv[0]], iter(argv[1:])
    for arg in rest:
        if arg == '--resume':
            # argparse gives `--resume` the next argument as its CKPT unless that is an option
            following = next(rest, None)
            if following is not None and following.startswith('-'):
                command.append(following)
        elif not arg.startswith('--resume='):
            command.append(arg)
    resume = shlex.join(['python', *command, '--resume'])
    checkpoint = latest_checkpoint(cfg['work_dir'])
    if checkpoint is None:
        return f'interrupted before the first checkpoint in {cfg["work_dir"]} was written; start again with: {resume}'
    return f'interrupted; the last complete checkpoint is {checkpoint}; resume with: {resume}'


def run_as_program(main):
    """Run a tool's `main()` as the whole program.

    After a successful run whose process group `process_group_closed` destroyed, the process leaves
    with status 0 through os._exit, once its threads have been stopped and joined as at a normal exit
    (thread pools included), the exit handlers have run (logging flushed and closed, data-loader workers
    stopped, temporary files removed) and stdout and stderr are flushed. destroy_process_group drops
    only torch's own references to the group; the run's objects (the DDP model, in reference cycles)
    keep it, and with it gloo's worker threads, alive into interpreter finalization. A worker that frees a tensor then needs the GIL, and a finalizing
    interpreter ends such a thread with pthread_exit, inside C++ code that cannot unwind: the process
    aborts (SIGABRT, "terminate called without an active exception") and the launcher fails a run
    that succeeded.

    A failed run ends as before, through the interpreter: its message and status are unchanged, and so
    is the time it takes to die, which torchrun's choice of the first failure in a job depends on.
    """
    main()
    if _destroyed_process_group:
        _exit_skipping_finalization()


def _exit_skipping_finalization():
    """Everything a normal exit does before finalizing the interpreter, then the end of the process."""
    # The interpreter's own first step: threading's exit callbacks, which tell idle ThreadPoolExecutor workers
    # (inductor's compile pool among them) to stop, then a join of the non-daemon threads. Joining without
    # the callbacks waits forever on such a worker. Neither step has a public call.
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
