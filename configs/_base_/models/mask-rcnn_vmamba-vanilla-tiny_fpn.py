# Mask R-CNN with FPN on an ImageNet-pretrained vanilla VMamba-T: the official vanilla detection model
# (detection/configs/vssm/mask_rcnn_vssm_fpn_coco_tiny.py). Its backbone sets no drop path rate and so takes
# the 0.2 of the Swin-T Mask R-CNN config it is based on. The backbone loads the official vanilla
# classification checkpoint as released (legacy key names; vmamba_mm converts them while loading).
_base_ = './mask-rcnn_vmamba-tiny_fpn.py'

model = dict(
    backbone=dict(
        arch='vanilla-tiny',
        drop_path_rate=0.2,
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v0cls/vssmtiny_dp01_ckpt_epoch_292.pth')))
