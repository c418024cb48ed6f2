# Runtime for ImageNet-style classification with mmpretrain.
_base_ = ['./default_runtime.py']

default_scope = 'mmpretrain'

default_hooks = dict(visualization=dict(type='VisualizationHook', enable=False))
visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
# The fast path on GPUs: the model's forward compiled with torch.compile (the first iterations pay the
# compilation; `--cfg-options compile=False` trains eagerly, as on a CPU), and cuDNN autotuned for the
# fixed 224² batches.
compile = 'auto'
env_cfg = dict(cudnn_benchmark=True)
