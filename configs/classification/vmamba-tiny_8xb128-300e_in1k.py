_base_ = [
    '../_base_/models/vmamba_cls.py',
    '../_base_/datasets/imagenet_bs128_vmamba_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_vmamba.py',
    '../_base_/default_runtime_cls.py',
]

# VMamba-T (official vmambav2v_tiny_224, `s1l8`): 82.6 top-1 in the paper.
model = dict(backbone=dict(arch='tiny', drop_path_rate=0.2), head=dict(in_channels=768))
