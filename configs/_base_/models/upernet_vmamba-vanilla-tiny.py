# UperNet on an ImageNet-pretrained vanilla VMamba-T: the official vanilla segmentation model
# (segmentation/configs/vssm/upernet_vssm_4xb4-160k_ade20k-512x512_tiny.py). Its backbone sets no drop path
# rate and so takes the 0.3 of the Swin UperNet config it is based on. The backbone loads the official vanilla
# classification checkpoint as released (legacy key names; vmamba_mm converts them while loading).
_base_ = './upernet_vmamba-tiny.py'

model = dict(
    backbone=dict(
        arch='vanilla-tiny',
        drop_path_rate=0.3,
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v0cls/vssmtiny_dp01_ckpt_epoch_292.pth')))
