_base_ = [
    '../_base_/models/vmamba_cls.py',
    '../_base_/datasets/imagenet_bs128_vmamba_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_vmamba.py',
    '../_base_/default_runtime_cls.py',
]

# Vanilla VMamba-T (official vmambav0_tiny_224).
model = dict(backbone=dict(arch='vanilla-tiny', drop_path_rate=0.2), head=dict(in_channels=768))

# The official README notes that Vanilla-VMamba-T alone was trained without EMA.
custom_hooks = []
