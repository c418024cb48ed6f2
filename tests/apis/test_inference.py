"""vmamba_mm.apis: the three tasks' inferencers on the demo configs (strict weights, bare images) and the pictures
of their predictions."""
import re

import mmcv
import numpy as np
import pytest
import torch
from demo_models import CONFIGS, DIGIT_CLASSES, REPO, load_module, random_checkpoint, val_image

from vmamba_mm import apis
from vmamba_mm.apis.base import inference_pipeline
from vmamba_mm.loading import IncompatibleCheckpointError, read_checkpoint

# The official key layout, stated independently of vmamba_mm.converters (the converter tests' helper).
official_layout = load_module(REPO / 'tests' / 'converters' / 'official_layout.py')
SCOPES = tuple(CONFIGS)
CLASSES = {'mmpretrain': tuple(DIGIT_CLASSES), 'mmdet': ('circle', 'square', 'triangle'),
           'mmseg': ('background', 'circle', 'square', 'triangle')}
UPSTREAM = {'mmpretrain': 'mmpretrain.apis.ImageClassificationInferencer', 'mmdet': 'mmdet.apis.DetInferencer',
            'mmseg': 'mmseg.apis.MMSegInferencer'}


@pytest.fixture(scope='module')
def inferencer_of(demo_project):
    """The inferencer of a task's demo model and checkpoint, built once per module."""
    built = {}

    def get(scope):
        if scope not in built:
            built[scope] = apis.init_inferencer(str(CONFIGS[scope]), str(random_checkpoint(demo_project, scope)),
                                                device='cpu')
        return built[scope]

    return get


def _upstream_class(scope):
    import importlib

    module, _, name = UPSTREAM[scope].rpartition('.')
    return getattr(importlib.import_module(module), name)


def test_inference_pipeline_reads_bare_images():
    pipeline = [
        dict(type='CheckedLoadImageFromFile', on_error='raise', to_float32=True),
        dict(type='mmdet.LoadAnnotations', with_bbox=True),
        dict(type='CheckSegLabels', num_classes=4),
        dict(type='CheckClassLabels', num_classes=10),
        dict(type='Resize', scale=(64, 64)),
        dict(type='PackSegInputs'),
    ]
    original = [dict(step) for step in pipeline]
    assert inference_pipeline(pipeline) == [dict(type='LoadImageFromFile', to_float32=True),
                                            dict(type='Resize', scale=(64, 64)), dict(type='PackSegInputs')]
    assert pipeline == original


@pytest.mark.parametrize('scope', SCOPES)
def test_inferencer_predicts_with_the_checkpoint_weights(scope, demo_project, inferencer_of):
    inferencer = inferencer_of(scope)
    assert isinstance(inferencer, _upstream_class(scope))  # a drop-in: the library's own call and results
    saved = read_checkpoint(str(random_checkpoint(demo_project, scope)))['state_dict']
    loaded = inferencer.model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[key], value) for key, value in saved.items())
    assert tuple(apis.inference.dataset_meta_of(inferencer)['classes']) == CLASSES[scope]

    image = val_image(demo_project, scope)
    height, width = mmcv.imread(str(image)).shape[:2]
    (sample, ) = apis.predict(inferencer, [str(image)])
    if scope == 'mmpretrain':
        assert sample.pred_score.shape == (10, ) and sample.pred_score.sum() == pytest.approx(1.0)
    elif scope == 'mmdet':
        instances = sample.pred_instances
        assert instances.bboxes.shape == (len(instances), 4) and instances.masks.shape == (len(instances), height, width)
        assert int(instances.labels.max()) < len(CLASSES[scope])
    else:
        assert sample.pred_sem_seg.data.shape == (1, height, width)
        assert int(sample.pred_sem_seg.data.max()) < len(CLASSES[scope])


def test_official_checkpoint_predicts_as_the_converted_one(demo_project, inferencer_of, tmp_path):
    ours = inferencer_of('mmpretrain')
    official = tmp_path / 'vssm_ckpt_epoch_1.pth'
    torch.save({'model': official_layout.to_official(ours.model.state_dict()), 'epoch': 1}, official)
    theirs = apis.init_inferencer(str(CONFIGS['mmpretrain']), str(official), device='cpu')
    image = str(val_image(demo_project, 'mmpretrain'))
    assert torch.equal(apis.predict(theirs, [image])[0].pred_score, apis.predict(ours, [image])[0].pred_score)


def test_checkpoint_of_another_model_is_refused(demo_project, tmp_path):
    checkpoint = read_checkpoint(str(random_checkpoint(demo_project, 'mmpretrain')))
    del checkpoint['state_dict']['head.fc.bias']
    torch.save(checkpoint, tmp_path / 'no_bias.pth')
    with pytest.raises(IncompatibleCheckpointError, match=r'head\.fc\.bias'):
        apis.init_inferencer(str(CONFIGS['mmpretrain']), str(tmp_path / 'no_bias.pth'), device='cpu')
    with pytest.raises(IncompatibleCheckpointError, match=r'unexpected keys .*neck\.'):
        apis.init_inferencer(str(CONFIGS['mmseg']), str(random_checkpoint(demo_project, 'mmdet')), device='cpu')


def test_inferencers_need_a_config_and_a_checkpoint(demo_project):
    checkpoint = str(random_checkpoint(demo_project, 'mmseg'))
    with pytest.raises(ValueError, match='needs the config of the model'):
        apis.MMSegInferencer(None, weights=checkpoint)
    with pytest.raises(ValueError, match='needs a checkpoint file'):
        apis.MMSegInferencer(str(CONFIGS['mmseg']), weights=None)


@pytest.mark.parametrize('scope', SCOPES)
def test_pictures_of_the_predictions(scope, demo_project, inferencer_of, tmp_path):
    image = str(val_image(demo_project, scope))
    ((_, picture, summary), ) = apis.write_pictures(inferencer_of(scope), [image], [str(tmp_path / 'out.png')],
                                                    score_thr=0.0)
    drawn, original = mmcv.imread(picture), mmcv.imread(image)
    if scope == 'mmpretrain':  # a 32x32 digit is drawn enlarged, its text legible
        assert drawn.shape == (224, 224, 3)
        label = summary.split(' (score ')[0]
        assert label in DIGIT_CLASSES
    else:
        assert drawn.shape == original.shape
        assert not np.array_equal(drawn, original)
        assert re.match(r'pixels: ' if scope == 'mmseg' else r'\d+ detections with score >= 0.0', summary)
