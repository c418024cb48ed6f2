_base_ = [
    '../_base_/models/upernet_vmamba-vanilla-small.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/upernet_adamw_160k.py',
    '../_base_/default_runtime_seg.py',
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.official_vanilla_norm_decay}}))
