"""Pictures of one sample for each task, by the task's own visualizer: a classification's class and score, a
detector's boxes and masks, a segmentation's overlay. demo/image_demo.py draws predictions with them and
tools/analysis_tools/browse_dataset.py the ground truth the training pipeline hands the model."""
import copy
import itertools
import os
import os.path as osp

import mmcv
import numpy as np

# Classification images smaller than this (short edge, pixels) are drawn enlarged, so that the class name and
# score written on them stay legible; the shapes of a detection or segmentation are drawn at the image's size.
MIN_LEGIBLE_SIDE = 224

_visualizer_ids = itertools.count()


def build_visualizer(cfg, dataset_meta):
    """The config's ``visualizer`` (the task's visualizer class), knowing the dataset's classes and palette.

    It writes nothing by itself (no vis backends): the callers write the pictures where they are asked to."""
    from mmengine.registry import VISUALIZERS, DefaultScope

    if 'visualizer' not in cfg:
        raise ValueError('the config sets no visualizer; the task runtimes in configs/_base_/ (default_runtime_cls.py, '
                         '_det.py, _seg.py) set the task\'s own')
    vis_cfg = copy.deepcopy(cfg.visualizer)
    vis_cfg.pop('vis_backends', None)
    vis_cfg.pop('save_dir', None)
    # Visualizers are named instances that live as long as the process: each one built here gets a name of its own.
    vis_cfg['name'] = f'vmamba_mm.apis-{next(_visualizer_ids)}'
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dict(dataset_meta)
    return visualizer


def draw_sample(scope, visualizer, image, data_sample, ground_truth=False, score_thr=0.3):
    """``image`` (RGB, HxWx3 uint8) with ``data_sample``'s predictions, or its ground truth with
    ``ground_truth=True``, drawn by ``visualizer`` (:func:`build_visualizer`) for the task of ``scope``.
    ``score_thr``: the lowest score of a detection that is drawn. Returns the picture (RGB)."""
    if scope == 'mmpretrain':
        short_side = min(image.shape[:2])
        return visualizer.visualize_cls(image, data_sample, draw_gt=ground_truth, draw_pred=not ground_truth,
                                        resize=MIN_LEGIBLE_SIDE if short_side < MIN_LEGIBLE_SIDE else None)
    options = dict(draw_gt=ground_truth, draw_pred=not ground_truth)
    if scope == 'mmdet':
        options['pred_score_thr'] = score_thr
    visualizer.add_datasample('sample', image, data_sample, **options)
    return visualizer.get_image()


def _ground_truth_drawable(scope, data_sample):
    """The data sample as the visualizer draws ground truth: mmdet's visualizer takes boxes as a tensor, not as
    the box objects its training pipeline packs."""
    if scope == 'mmdet' and 'gt_instances' in data_sample:
        boxes = data_sample.gt_instances.get('bboxes')
        if boxes is not None and hasattr(boxes, 'tensor'):
            data_sample = data_sample.clone()
            data_sample.gt_instances.bboxes = boxes.tensor
    return data_sample


def _as_rgb_image(inputs):
    """A packed image tensor (CxHxW, BGR as loaded, any dtype) as an RGB uint8 array."""
    image = inputs.permute(1, 2, 0).cpu().numpy()
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image[..., ::-1].copy() if image.shape[2] == 3 else np.repeat(image, 3, axis=2)


def browse_dataset(cfg, output_dir, max_samples=None):
    """Draw what the training pipeline of ``cfg`` hands the model (the transformed image and its ground truth)
    for the first ``max_samples`` samples of the training set (all without it) into ``output_dir``, one PNG each,
    named ``<index>_<image name>.png``. Returns the paths written.

    ``cfg`` must have had its scope registered (:func:`vmamba_mm.launch.register_scope`)."""
    from mmengine.registry import DATASETS, DefaultScope
    from mmengine.utils import ProgressBar

    if max_samples is not None and max_samples < 1:
        raise ValueError(f'--max must be at least 1, got {max_samples}')
    scope = cfg.default_scope
    with DefaultScope.overwrite_default_scope(scope):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    visualizer = build_visualizer(cfg, dataset.metainfo)
    count = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    os.makedirs(output_dir, exist_ok=True)
    written = []
    progress = ProgressBar(count)
    for index in range(count):
        item = dataset[index]
        sample = item['data_samples']
        picture = draw_sample(scope, visualizer, _as_rgb_image(item['inputs']), _ground_truth_drawable(scope, sample),
                              ground_truth=True)
        name = osp.splitext(osp.basename(sample.get('img_path', '')))[0] or 'sample'
        path = osp.join(output_dir, f'{index:05d}_{name}.png')
        mmcv.imwrite(picture[..., ::-1], path)
        written.append(path)
        progress.update()
    return written
