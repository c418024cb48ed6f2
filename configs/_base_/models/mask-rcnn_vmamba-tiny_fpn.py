# Mask R-CNN with FPN (mmdet's R50-FPN detector definition) on an ImageNet-pretrained VMamba-T.
# The backbone loads the official classification checkpoint as released (vmamba_mm converts
# its key layout while loading); the detector's heads start from mmdet's default init.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='VMamba',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
