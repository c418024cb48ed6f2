_base_ = [
    '../_base_/models/vmamba_cls.py',
    '../_base_/datasets/imagenet_bs128_vmamba_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_vmamba.py',
    '../_base_/default_runtime_cls.py',
]

# Vanilla VMamba-B (official vmambav0_base_224; drop path 0.5 as in its config).
model = dict(backbone=dict(arch='vanilla-base', drop_path_rate=0.5), head=dict(in_channels=1024))
