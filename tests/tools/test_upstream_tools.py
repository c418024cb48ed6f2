"""The configs under the installed mmpretrain's, mmdet's and mmseg's own tools/train.py and tools/test.py.

The OpenMMLab packages install their tools in mim's layout, ``<package>/.mim/tools/``. Each script runs here
unchanged, as a user runs it: from a project folder outside the checkout that holds the data (configs name their
data relative to the working directory), the config given by its path, vmamba_mm found through PYTHONPATH. Nothing
of vmamba_mm is imported by anyone but the config's ``custom_imports``, and its ``runner_type`` decides the runner.

- Demo configs: each task's train.py trains for one epoch (classification, detection) or two iterations
  (segmentation) on a few images and validates; test.py on the saved checkpoint reproduces that validation.
- Every other config (the paper recipes, whose data CI does not have): train.py runs up to ``runner.train()``,
  i.e. merges its arguments into the config and builds the runner and the model; ``train()`` itself, which
  needs the dataset, is replaced by a recorder. test.py is recorded the same way on the demo configs: the runner
  it builds decides how it loads (StrictRunner's strict loading has its own tests in tests/engine).

mmseg 1.2.2's tools/test.py builds mmengine's plain ``Runner`` whatever ``runner_type`` says. That runner loads
non-strictly, and, through torch.load's weights-only default, cannot read a training checkpoint (the message
hub's ``HistoryBuffer``). Segmentation checkpoints are tested there as they are released, by
tools/model_converters/publish_model.py (weights and meta only), and reproduce the validation result.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tool_runner import REPO, load_tool

pytestmark = pytest.mark.slow

CONFIGS = REPO / 'configs'
# task folder -> (package whose tools run its configs, demo config)
TASKS = {
    'classification': ('mmpretrain', 'vmamba-demo_digits.py'),
    'detection': ('mmdet', 'mask-rcnn_vmamba-demo_shapes.py'),
    'segmentation': ('mmseg', 'upernet_vmamba-demo_shapes.py'),
}
# The start of a config's name -> the model class it builds.
MODEL_CLASSES = {'vmamba': 'ImageClassifier', 'mask-rcnn': 'MaskRCNN', 'retinanet': 'RetinaNet',
                 'upernet': 'EncoderDecoder', 'fpn': 'EncoderDecoder'}


def upstream_tool(package, script):
    """The installed `package`'s own tools/`script`, where mim's layout puts it."""
    path = Path(importlib.util.find_spec(package).submodule_search_locations[0]) / '.mim' / 'tools' / script
    assert path.is_file(), f'{package} is installed without its tools: {path} does not exist'
    return path


def checkout_env():
    """The environment of a script run: vmamba_mm found on PYTHONPATH, one intra-op thread (tiny models on a
    small shared CPU machine get many times slower with more)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def run_upstream(package, script, *args, cwd):
    """`python <package>/.mim/tools/<script> args...` in `cwd`; returns the CompletedProcess (text)."""
    return subprocess.run([sys.executable, str(upstream_tool(package, script)), *map(str, args)], cwd=cwd,
                          env=checkout_env(), capture_output=True, text=True, timeout=1800)


def last_validation(work_dir, metric):
    """The last validation logged by a run in `work_dir` that has `metric`."""
    (log, ) = work_dir.glob('*/vis_data/scalars.json')
    return [entry for entry in map(json.loads, log.read_text().splitlines()) if metric in entry][-1]


def printed_metrics(output, prefix):
    """The `name: value` pairs whose name starts with `prefix` on the `Epoch(test)` / `Iter(test)` line."""
    (line, ) = [line for line in output.splitlines() if re.search(r'(Epoch|Iter)\(test\)', line)]
    return {name: float(value) for name, value in re.findall(rf'\b({prefix}\S*): ([-\d.]+)', line)}


def trained(project, package, config, *options):
    """Trains `config` with the upstream train.py in `project`; returns the work dir."""
    work_dir = project / 'work_dirs' / 'upstream'
    train = run_upstream(package, 'train.py', config, '--work-dir', work_dir, '--cfg-options', *options,
                         cwd=project)
    assert train.returncode == 0, train.stderr[-3000:]
    return work_dir


# --- the demo configs, trained and tested by the upstream scripts --------------------------------------------


def test_mmpretrain_tools_train_and_test_the_demo(digits_project):
    config = CONFIGS / 'classification' / TASKS['classification'][1]
    # One step of 64 images, validated on 64.
    work_dir = trained(digits_project, 'mmpretrain', config, 'train_cfg.max_epochs=1',
                       'train_dataloader.dataset.indices=64', 'val_dataloader.dataset.indices=64')
    final_val = last_validation(work_dir, 'accuracy/top1')
    assert final_val['step'] == 1

    test = run_upstream('mmpretrain', 'test.py', config, work_dir / 'epoch_1.pth', '--work-dir',
                        digits_project / 'upstream_test', '--cfg-options', 'test_dataloader.dataset.indices=64',
                        cwd=digits_project)
    assert test.returncode == 0, test.stderr[-3000:]
    # Both weight sets of the EMA hook, as in training's validation.
    metrics = printed_metrics(test.stdout, 'accuracy/')
    assert metrics.keys() == {'accuracy/top1', 'accuracy/top1_origin'}
    for name, value in metrics.items():
        assert value == pytest.approx(final_val[name], abs=1e-4), name


def test_mmdet_tools_train_and_test_the_demo(tmp_path_factory):
    project = tmp_path_factory.mktemp('upstream_detection')
    load_tool('dataset_converters/make_shapes_demo.py').make_shapes_demo(
        'coco', str(project / 'data' / 'shapes_coco'), num_train=2, num_val=1)
    config = CONFIGS / 'detection' / TASKS['detection'][1]
    work_dir = trained(project, 'mmdet', config, 'train_cfg.max_epochs=1')
    final_val = last_validation(work_dir, 'coco/bbox_mAP')
    assert final_val['step'] == 1

    test = run_upstream('mmdet', 'test.py', config, work_dir / 'epoch_1.pth', '--work-dir', project / 'test',
                        cwd=project)
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = printed_metrics(test.stdout, 'coco/')
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'} <= metrics.keys()
    for name, value in metrics.items():
        assert value == pytest.approx(final_val[name], abs=1e-4), name


def test_mmseg_tools_train_and_test_the_demo(tmp_path_factory):
    project = tmp_path_factory.mktemp('upstream_segmentation')
    load_tool('dataset_converters/make_shapes_demo.py').make_shapes_demo(
        'ade', str(project / 'data' / 'shapes_ade'), num_train=2, num_val=1)
    config = CONFIGS / 'segmentation' / TASKS['segmentation'][1]
    work_dir = trained(project, 'mmseg', config, 'train_cfg.max_iters=2')
    final_val = last_validation(work_dir, 'mIoU')
    assert final_val['step'] == 2

    # mmseg's test.py builds the plain Runner (see the module docstring): it gets the released checkpoint.
    released = load_tool('model_converters/publish_model.py').publish(str(work_dir / 'iter_2.pth'),
                                                                       str(project / 'upernet-demo.pth'))
    test = run_upstream('mmseg', 'test.py', config, released, '--work-dir', project / 'test', cwd=project)
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = printed_metrics(test.stdout, '')
    assert {'aAcc', 'mIoU', 'mAcc'} <= metrics.keys()
    for name in ('aAcc', 'mIoU', 'mAcc'):
        assert metrics[name] == pytest.approx(final_val[name], abs=1e-2), name


# --- every config: what the upstream scripts build from it ---------------------------------------------------

# Runs upstream scripts in one process, `script CONFIG [CHECKPOINT] --work-dir DIR` for each (script, config) pair
# of the JSON list argv[3], with Runner.train and Runner.test recording the runner the script built instead of
# running it. StrictRunner's train and test end in Runner's, so the recorder sees either runner. yapf's layout of
# the config text the runner logs and saves, most of the time of a build, is left out: the text stays as mmengine
# writes it before formatting.
RECORDER = textwrap.dedent('''
    import json, runpy, sys

    import mmengine.config.config
    import mmengine.runner

    mmengine.config.config.FormatCode = lambda text, **options: (text, False)

    out, work_root, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    assert 'vmamba_mm' not in sys.modules
    built = []

    def record(runner):
        model = runner.model
        built.append(dict(runner=type(runner).__name__, model=type(model).__name__,
                          backbone=type(getattr(model, 'backbone', None)).__name__, work_dir=runner.work_dir))

    mmengine.runner.Runner.train = mmengine.runner.Runner.test = record
    for index, (script, config) in enumerate(runs):
        checkpoint = ['unused.pth'] if script.endswith('test.py') else []
        sys.argv = [script, config, *checkpoint, '--work-dir', f'{work_root}/{index}']
        runpy.run_path(script, run_name='__main__')
    with open(out, 'w') as file:
        json.dump(built, file)
    ''')

# tools/test.py: mmpretrain's and mmdet's build the runner of runner_type, mmseg 1.2.2's always mmengine's Runner.
TEST_RUNNERS = {'mmpretrain': 'StrictRunner', 'mmdet': 'StrictRunner', 'mmseg': 'Runner'}


def task_configs(task):
    return sorted(str(path) for path in (CONFIGS / task).glob('*.py'))


def test_every_task_and_config_is_covered():
    assert {path.parent.name for path in CONFIGS.glob('*/*.py')} - {'_base_'} == set(TASKS)
    for task, (_, demo) in TASKS.items():
        assert str(CONFIGS / task / demo) in task_configs(task)


def test_upstream_tools_build_the_runner_and_model_from_every_config(tmp_path):
    """Each task's train.py on every config but the demo (trained above), its test.py on the demo."""
    runs, expected = [], []
    for task, (package, demo) in sorted(TASKS.items()):
        demo = str(CONFIGS / task / demo)
        for config in task_configs(task):
            script = 'test.py' if config == demo else 'train.py'
            runs.append((str(upstream_tool(package, script)), config))
            runner = TEST_RUNNERS[package] if script == 'test.py' else 'StrictRunner'
            (model_class, ) = [cls for start, cls in MODEL_CLASSES.items() if Path(config).name.startswith(start)]
            expected.append(dict(runner=runner, model=model_class, backbone='VMamba',
                                 work_dir=str(tmp_path / 'work_dirs' / str(len(expected)))))
    out = tmp_path / 'built.json'
    result = subprocess.run([sys.executable, '-c', RECORDER, str(out), str(tmp_path / 'work_dirs'), json.dumps(runs)],
                            cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(out.read_text())
    assert len(built) == len(runs)
    for run, runner, expectation in zip(runs, built, expected):
        assert runner == expectation, run
