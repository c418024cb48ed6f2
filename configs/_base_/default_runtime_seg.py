# Runtime for ADE20K-style semantic segmentation with mmseg: the shared runtime (atomic checkpoints, the
# non-finite-loss stop) plus what mmseg's own runtime and schedules give its tools. Segmentation trains by
# iterations: checkpoints and logged metrics count iterations, a checkpoint every 16k as in mmseg's schedules.
_base_ = ['./default_runtime.py']

default_scope = 'mmseg'

default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=16000),
    visualization=dict(type='SegVisualizationHook'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
# Training crops all have one size, so cuDNN's autotuned convolutions pay off, as mmseg's runtime has it.
env_cfg = dict(cudnn_benchmark=True)

# tools/test.py --tta merges the predictions of the config's tta_pipeline with this model.
tta_model = dict(type='SegTTAModel')
