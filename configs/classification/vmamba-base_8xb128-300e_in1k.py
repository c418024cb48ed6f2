_base_ = [
    '../_base_/models/vmamba_cls.py',
    '../_base_/datasets/imagenet_bs128_vmamba_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_vmamba.py',
    '../_base_/default_runtime_cls.py',
]

# VMamba-B (official vmambav2_base_224, `s2l15`): 83.9 top-1 in the paper.
model = dict(backbone=dict(arch='base', drop_path_rate=0.6), head=dict(in_channels=1024))
