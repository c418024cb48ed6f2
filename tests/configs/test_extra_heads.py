"""Heads beyond the paper take the VMamba backbone: the RetinaNet (mmdet, one-stage) and Semantic FPN (mmseg)
demo configs, each trained a few iterations on the shapes demo data and evaluated from its checkpoint, through
the config handling of tools/train.py and tools/test.py (in this process: no interpreter start-up per run)."""
import math

import pytest
import torch
from mmengine.hooks import Hook

from shapes_demo_data import REPO, load_module, make_shapes_demo
from vmamba_mm import launch

pytestmark = pytest.mark.slow  # end-to-end training and testing, twice

TRAIN_TOOL = load_module(REPO / 'tools' / 'train.py')
TEST_TOOL = load_module(REPO / 'tools' / 'test.py')
ITERATIONS = 4
NUM_TRAIN, NUM_VAL = 4, 2


class InitialWeights(Hook):
    """Keeps a copy of the model's weights as training starts, after the runner initialised them."""

    weights = None

    def before_train(self, runner):
        self.weights = {name: param.detach().clone() for name, param in runner.model.named_parameters()}


def train_and_test(config, project, *options):
    """Train `config` in `project` (whose data/ holds the demo data) as tools/train.py would, with the
    `--cfg-options` `options`, then test its last checkpoint as tools/test.py would. Returns the training
    losses, the weights before and after training, the validation metrics of the training run and the
    metrics of the test run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)  # the demo configs name their data relative to the project folder, as a user runs them
        args = TRAIN_TOOL.parse_args([str(config), '--work-dir', 'train', '--cfg-options', *options])
        runner = launch.build_runner(TRAIN_TOOL.build_config(args))
        initial = InitialWeights()
        runner.register_hook(initial)
        runner.train()
        losses = runner.message_hub.get_scalar('train/loss').data[0]
        trained = {name: param.detach().clone() for name, param in runner.model.named_parameters()}
        val = {name[len('val/'):]: buffer.current() for name, buffer in runner.message_hub.log_scalars.items()
               if name.startswith('val/')}

        checkpoint = launch.latest_checkpoint('train')
        assert checkpoint is not None
        args = TEST_TOOL.parse_args([str(config), checkpoint, '--work-dir', 'test', '--cfg-options', *options])
        test = launch.build_runner(TEST_TOOL.build_config(args)).test()
    return losses, initial.weights, trained, val, test


def check_training(losses, initial, trained, parts):
    assert len(losses) == ITERATIONS
    assert all(math.isfinite(loss) for loss in losses)
    assert len(set(losses)) > 1
    # Every part learned: the gradient of the new head reaches through the neck to the backbone's stem.
    for part in parts:
        names = [name for name in initial if name.startswith(part)]
        assert names, part
        assert any(not torch.equal(initial[name], trained[name]) for name in names), f'{part} did not change'


@pytest.fixture(scope='module')
def retinanet(tmp_path_factory):
    project = tmp_path_factory.mktemp('retinanet')
    make_shapes_demo('coco', project / 'data' / 'shapes_coco', num_train=NUM_TRAIN, num_val=NUM_VAL)
    epochs = ITERATIONS * 2 // NUM_TRAIN
    return train_and_test(
        REPO / 'configs' / 'detection' / 'retinanet_vmamba-demo_shapes.py', project,
        'train_dataloader.batch_size=2', f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        f'default_hooks.checkpoint.interval={epochs}',
        # A few iterations leave every score near the focal loss's prior (0.01): keep them all, so that
        # CocoMetric has detections to evaluate.
        'model.test_cfg.score_thr=0.0')


@pytest.fixture(scope='module')
def semantic_fpn(tmp_path_factory):
    project = tmp_path_factory.mktemp('semantic_fpn')
    make_shapes_demo('ade', project / 'data' / 'shapes_ade', num_train=NUM_TRAIN, num_val=NUM_VAL)
    return train_and_test(
        REPO / 'configs' / 'segmentation' / 'fpn_vmamba-demo_shapes.py', project,
        'train_dataloader.batch_size=2', f'train_cfg.max_iters={ITERATIONS}', f'train_cfg.val_interval={ITERATIONS}',
        f'default_hooks.checkpoint.interval={ITERATIONS}')


def test_retinanet_trains_on_the_backbone(retinanet):
    losses, initial, trained, *_ = retinanet
    check_training(losses, initial, trained, ('backbone.patch_embed.', 'backbone.stages.3.', 'neck.',
                                              'bbox_head.retina_cls.', 'bbox_head.retina_reg.'))
    # The backbone returns only the stages the FPN reads: no output norm for stage 0.
    assert not any(name.startswith('backbone.outnorm0.') for name in initial)


def test_retinanet_test_tool_reproduces_the_validation(retinanet):
    *_, val, test = retinanet
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'} <= set(test)
    assert all(-1 <= value <= 1 for value in test.values())  # COCO reports -1 for an empty size range
    assert test == pytest.approx({name: val[name] for name in test}, abs=1e-4)


def test_semantic_fpn_trains_on_the_backbone(semantic_fpn):
    losses, initial, trained, *_ = semantic_fpn
    check_training(losses, initial, trained, ('backbone.patch_embed.', 'backbone.stages.3.', 'neck.',
                                              'decode_head.conv_seg.'))


def test_semantic_fpn_test_tool_reproduces_the_validation(semantic_fpn):
    *_, val, test = semantic_fpn
    assert set(test) == {'aAcc', 'mIoU', 'mAcc'}
    assert all(0 <= value <= 100 for value in test.values())
    assert test == pytest.approx({name: val[name] for name in test}, abs=1e-2)
