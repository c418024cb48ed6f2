# Mask R-CNN with FPN on an ImageNet-pretrained vanilla VMamba-B (official
# detection/configs/vssm/mask_rcnn_vssm_fpn_coco_base.py; drop path 0.2 from its Swin-T base, as for T).
# The official config starts from vssmbase_dp05_ckpt_epoch_260.pth, which was never published; this one
# starts from the released vanilla VMamba-B classifier (drop path 0.6, epoch 241).
_base_ = './mask-rcnn_vmamba-vanilla-tiny_fpn.py'

model = dict(
    backbone=dict(
        arch='vanilla-base',
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v0cls/vssmbase_dp06_ckpt_epoch_241.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
