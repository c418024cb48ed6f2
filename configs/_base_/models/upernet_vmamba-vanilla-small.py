# UperNet on an ImageNet-pretrained vanilla VMamba-S (official
# segmentation/configs/vssm/upernet_vssm_4xb4-160k_ade20k-512x512_small.py; drop path 0.3, as for T).
_base_ = './upernet_vmamba-vanilla-tiny.py'

model = dict(
    backbone=dict(
        arch='vanilla-small',
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v0cls/vssmsmall_dp03_ckpt_epoch_238.pth')))
