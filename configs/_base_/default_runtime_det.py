# Runtime for COCO-style detection and instance segmentation with mmdet: the shared runtime (atomic
# checkpoints, the non-finite-loss stop) plus what mmdet's own runtime gives its tools.
_base_ = ['./default_runtime.py']

default_scope = 'mmdet'

default_hooks = dict(visualization=dict(type='DetVisualizationHook'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
