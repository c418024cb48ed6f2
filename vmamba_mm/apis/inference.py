"""One entry for the three tasks: the inferencer that fits a config (from its ``default_scope``), its predictions
as data samples, a line about each, and the pictures demo/image_demo.py writes."""
import copy
import importlib
import os
import os.path as osp

import mmcv
import numpy as np

from .visualization import build_visualizer, draw_sample

# The inferencer of each library, as vmamba_mm.apis names it.
INFERENCERS = {
    'mmpretrain': ('classification', 'ImageClassificationInferencer'),
    'mmdet': ('detection', 'DetInferencer'),
    'mmseg': ('segmentation', 'MMSegInferencer'),
}
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def init_inferencer(config, checkpoint, device=None):
    """The vmamba_mm inferencer of the config's task, with the checkpoint's weights loaded strictly.

    Args:
        config (str | Config): The config file, or the config; its ``default_scope`` picks the task.
        checkpoint (str): A checkpoint of the config's model: from tools/train.py, or an official VMamba release.
        device (str, optional): Where the model runs (default: the available accelerator, else the CPU).
    """
    from ..launch import load_config, register_scope

    cfg = load_config(config) if isinstance(config, str) else copy.deepcopy(config)
    scope = register_scope(cfg)
    module, name = INFERENCERS[scope]
    inferencer_class = getattr(importlib.import_module(f'.{module}', __package__), name)
    if scope == 'mmpretrain':
        inferencer = inferencer_class(cfg, checkpoint, device=device)
    else:
        inferencer = inferencer_class(cfg, checkpoint, device=device, scope=scope)
    return inferencer


def predict(inferencer, images, batch_size=1):
    """The predictions (data samples) of an :func:`init_inferencer` inferencer for ``images`` (paths or arrays),
    in order; the inferencer shows its progress bar."""
    results = inferencer(list(images), return_datasamples=True, batch_size=batch_size)
    if isinstance(results, dict):  # mmdet packs them under 'predictions'
        results = results['predictions']
    return results if isinstance(results, list) else [results]  # mmseg returns a lone sample as it is


def dataset_meta_of(inferencer):
    """The class names (and palette) an inferencer predicts with."""
    if inferencer.scope == 'mmpretrain':
        return dict(classes=inferencer.classes)
    return inferencer.model.dataset_meta


def summarize(scope, data_sample, dataset_meta, score_thr=0.3):
    """One line about a prediction: the class and its score; the detections at or above ``score_thr``; the
    share of the image each predicted class covers."""
    classes = dataset_meta.get('classes')

    def name(label):
        return classes[label] if classes is not None and label < len(classes) else str(label)

    if scope == 'mmpretrain':
        scores = data_sample.pred_score
        label = int(scores.argmax())
        return f'{name(label)} (score {float(scores[label]):.3f})'
    if scope == 'mmdet':
        instances = data_sample.pred_instances
        kept = instances[instances.scores >= score_thr]
        labels, counts = np.unique(kept.labels.cpu().numpy(), return_counts=True)
        found = ', '.join(f'{count} {name(int(label))}' for label, count in zip(labels, counts))
        return f'{len(kept)} detections with score >= {score_thr}' + (f': {found}' if found else '')
    labels, counts = np.unique(data_sample.pred_sem_seg.data.cpu().numpy(), return_counts=True)
    order = np.argsort(-counts)
    shares = ', '.join(f'{name(int(labels[i]))} {100 * counts[i] / counts.sum():.1f}%' for i in order)
    return f'pixels: {shares}'


def _images_and_outputs(image, out_file, out_dir):
    """(images, pictures): the images to infer on and where each one's picture goes."""
    if osp.isdir(image):
        if out_dir is None:
            raise ValueError(f'{image} is a folder: pass --out-dir DIR for its pictures (--out-file is for one image)')
        names = sorted(name for name in os.listdir(image) if name.lower().endswith(IMAGE_SUFFIXES))
        if not names:
            raise FileNotFoundError(f'folder {image} holds no images ({", ".join(IMAGE_SUFFIXES)})')
        return ([osp.join(image, name) for name in names],
                [osp.join(out_dir, f'{osp.splitext(name)[0]}.png') for name in names])
    if not osp.isfile(image):
        raise FileNotFoundError(f'image {image} does not exist')
    if out_file is None:
        raise ValueError(f'pass --out-file FILE for the picture of {image} (--out-dir is for a folder of images)')
    if osp.splitext(out_file)[1].lower() not in IMAGE_SUFFIXES:
        raise ValueError(f'--out-file {out_file}: name the picture with an image suffix, e.g. out.png')
    return [image], [out_file]


def write_pictures(inferencer, images, pictures, score_thr=0.3):
    """Predict ``images`` with an :func:`init_inferencer` inferencer and write the picture of each prediction to
    the matching path of ``pictures``. Returns ``[(image, picture path, summary line), ...]``."""
    scope, meta = inferencer.scope, dataset_meta_of(inferencer)
    visualizer = build_visualizer(inferencer.cfg, meta)
    results = []
    for path, sample, picture_path in zip(images, predict(inferencer, images), pictures):
        picture = draw_sample(scope, visualizer, mmcv.imread(path, channel_order='rgb'), sample, score_thr=score_thr)
        mmcv.imwrite(picture[..., ::-1], picture_path)
        results.append((path, picture_path, summarize(scope, sample, meta, score_thr)))
    return results


def image_demo(image, config, checkpoint, out_file=None, out_dir=None, device=None, score_thr=0.3):
    """Predict ``image`` (a file, or a folder of images) with the config's model and write the picture of each
    prediction: to ``out_file`` for one image, into ``out_dir`` (same names, .png) for a folder.

    Returns ``[(image, picture path, summary line), ...]``."""
    images, pictures = _images_and_outputs(image, out_file, out_dir)
    return write_pictures(init_inferencer(config, checkpoint, device=device), images, pictures, score_thr)
