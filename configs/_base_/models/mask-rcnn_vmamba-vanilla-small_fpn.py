# Mask R-CNN with FPN on an ImageNet-pretrained vanilla VMamba-S (official
# detection/configs/vssm/mask_rcnn_vssm_fpn_coco_small.py; drop path 0.2 from its Swin-T base, as for T).
_base_ = './mask-rcnn_vmamba-vanilla-tiny_fpn.py'

model = dict(
    backbone=dict(
        arch='vanilla-small',
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v0cls/vssmsmall_dp03_ckpt_epoch_238.pth')))
