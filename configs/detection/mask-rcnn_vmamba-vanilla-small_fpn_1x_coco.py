_base_ = [
    '../_base_/models/mask-rcnn_vmamba-vanilla-small_fpn.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/mask-rcnn_adamw_1x.py',
    '../_base_/default_runtime_det.py',
]

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.official_vanilla_norm_decay}}))
