# Mask R-CNN with FPN on an ImageNet-pretrained VMamba-B.
_base_ = './mask-rcnn_vmamba-tiny_fpn.py'

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v2cls/vssm_base_0229_ckpt_epoch_237.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
