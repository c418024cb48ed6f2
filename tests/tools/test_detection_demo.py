"""The detection demo end to end, as a user runs it: generate the shapes data, tools/train.py, tools/test.py."""
import json
import re

import pytest

from tool_runner import REPO, run_tool

pytestmark = pytest.mark.slow

DEMO = REPO / 'configs' / 'detection' / 'mask-rcnn_vmamba-demo_shapes.py'
EPOCHS = 4
# Stated in configs/detection/README.md, with the numbers measured there.
MIN_BOX_AP50, MIN_MASK_AP50 = 0.5, 0.5


def coco_metrics(output):
    return {name: float(value) for name, value in re.findall(r'^coco/((?:bbox|segm)_mAP\w*): ([-\d.]+)$', output, re.M)}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    project = tmp_path_factory.mktemp('detection_demo')
    data = run_tool('dataset_converters/make_shapes_demo.py', 'coco', cwd=project)
    assert data.returncode == 0, data.stderr[-3000:]
    work_dir = project / 'work_dirs' / 'demo'
    train = run_tool('train.py', DEMO, '--work-dir', work_dir, cwd=project)
    assert train.returncode == 0, train.stderr[-3000:]
    return project, work_dir


def test_demo_reaches_the_stated_ap_on_held_out_images(trained):
    _, work_dir = trained
    scalars = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1].read_text().splitlines()
    (final_val, ) = [json.loads(line) for line in scalars if 'coco/bbox_mAP_50' in line]
    assert final_val['step'] == EPOCHS
    assert final_val['coco/bbox_mAP_50'] >= MIN_BOX_AP50
    assert final_val['coco/segm_mAP_50'] >= MIN_MASK_AP50


def test_test_tool_reproduces_the_metrics_from_the_checkpoint(trained):
    project, work_dir = trained
    scalars = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1].read_text().splitlines()
    (final_val, ) = [json.loads(line) for line in scalars if 'coco/bbox_mAP_50' in line]
    test = run_tool('test.py', DEMO, work_dir / f'epoch_{EPOCHS}.pth', '--work-dir', project / 'test', cwd=project)
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = coco_metrics(test.stdout)
    assert {'bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50'} <= set(metrics)
    for name, value in metrics.items():
        assert value == pytest.approx(final_val[f'coco/{name}'], abs=1e-4), name
