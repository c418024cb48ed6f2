"""What `tools/train.py` and `tools/test.py` share: turning command-line arguments into a checked config.

Everything here fails before a run starts, with an error that names what to fix, and leaves the
files of earlier runs as they are. `run_tool` runs a tool's Runner; `process_group_closed` and `run_as_program`
end a distributed run.
"""
import argparse
import atexit
import contextlib
import importlib
import os
import os.path as osp
import pickle
import shlex
import sys
import tempfile
import threading

import torch

# default_scope -> the converter's task name for official checkpoints.
SCOPE_TASKS = {'mmpretrain': 'cls', 'mmdet': 'det', 'mmseg': 'seg'}


class ConfigFileError(ValueError):
    """The config file is not a vmamba_mm (mmengine) config: another format, or the official repo's yacs file."""


class ConfigScopeError(ValueError):
    """The config names no `default_scope`, or one that vmamba_mm does not drive."""


class WorkDirError(OSError):
    """The work directory cannot be written, or holds a run that starting afresh would overwrite."""


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be read as one (truncated, corrupt, or not a checkpoint)."""


def parse_with_launcher(parser, argv=None):
    """Add the launcher options both tools share, parse, and export LOCAL_RANK for mmengine."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher: none (one process), pytorch (torchrun), slurm (srun) or mpi')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def user_errors():
    """The exceptions the tools report as one line (what the user got wrong), without a traceback."""
    from .engine.cpu_dist import LauncherEnvironmentError

    return (FileNotFoundError, ConfigFileError, ConfigScopeError, WorkDirError, CheckpointError,
            LauncherEnvironmentError, ValueError)


def run_errors():
    """Errors that stop a run with a message saying where and what to do: reported as one line too."""
    from .datasets import UnreadableImageError
    from .engine import CheckpointSaveError, NonFiniteLossError, ResumeError

    return (CheckpointSaveError, NonFiniteLossError, ResumeError, UnreadableImageError)


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


def read_checkpoint(path):
    """Load a checkpoint file on the CPU, with clear errors for missing, truncated or foreign files.

    Tensors, mmengine's metadata and an official checkpoint's pickled training config are read
    (the latter as an opaque placeholder); nothing else in the file is imported or run."""
    from .converters.official import load_checkpoint_file

    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        checkpoint = load_checkpoint_file(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f'checkpoint {path} cannot be read (truncated or corrupt?): {error}') from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'checkpoint {path} holds a {type(checkpoint).__name__}, not a dict of weights')
    return checkpoint


def checkpoint_to_load(path, checkpoint, scope, work_dir):
    """The file test.py hands to the Runner for `checkpoint` (read from `path`) and whether it was
    converted: `path` itself for mm checkpoints; for an official VMamba checkpoint a converted copy
    (its `model` weights) in the work dir."""
    from .converters.official import is_official_layout, official_to_mm, unwrap_state_dict

    if is_official_layout(unwrap_state_dict(checkpoint)):
        converted = dict(state_dict=official_to_mm(checkpoint, task=SCOPE_TASKS[scope]),
                         meta=dict(converted_from=osp.basename(path)))
        target = osp.join(work_dir, f'{osp.splitext(osp.basename(path))[0]}_mm.pth')
        save_atomically(converted, target)
        return target, True
    if 'state_dict' in checkpoint or all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        return path, False
    raise CheckpointError(
        f"checkpoint {path} has neither 'state_dict' (mmengine) nor official VMamba weights ('model'); "
        f'top-level keys: {sorted(checkpoint)[:10]}')


def save_atomically(obj, path):
    """torch.save to a temporary sibling, then publish it under `path`: readers never see a half-written file."""
    from .engine.hooks import publish

    handle, staging = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', dir=osp.dirname(path) or '.')
    os.close(handle)
    try:
        torch.save(obj, staging)
        publish(staging, path)
    except BaseException:
        if osp.exists(staging):
            os.remove(staging)
        raise


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


def build_runner(cfg):
    """The config's own `runner_type` when it names one, else mmengine's Runner.

    mmengine's distributed set-up assumes GPUs; on a CPU-only host the process group (gloo) and the
    DDP wrapper are prepared here first."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    if cfg.get('launcher', 'none') != 'none' and not torch.cuda.is_available():
        from .engine.cpu_dist import setup_cpu_distributed
        setup_cpu_distributed(cfg, cfg.launcher)

    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


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
    at the end and checkpoints loadable. A config's `compile` compiles the model's forward, under
    torch.compile's settings for VMamba where the model has a VMamba backbone (`compat.torch_compile`). A
    mistake in the config or command line (`user_errors`) and a run stopped by one of `run_errors` end the
    process with their one-line message instead of a traceback; so does Ctrl-C (`interrupted_message`), with
    exit status 130 as a shell reports an interrupted command."""
    from .compat import compile_forward, compile_options_of, compile_settings_for, trusted_checkpoint_globals

    cfg = None
    with process_group_closed():
        try:
            try:
                cfg = make_config()
                compile_options = compile_options_of(cfg)
                runner = build_runner(cfg)
            except user_errors() as error:
                sys.exit(f'{type(error).__name__}: {error}')
            if compile_options is not None:
                runner.cfg.compile = None  # else mmengine compiles its train_step, optimizer step included
                compile_forward(runner.model, compile_options)
            try:
                with trusted_checkpoint_globals(), compile_settings_for(runner.model):
                    run(runner)
            except run_errors() as error:
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
