# UperNet on an ImageNet-pretrained vanilla VMamba-B (official
# segmentation/configs/vssm/upernet_vssm_4xb4-160k_ade20k-512x512_base.py; drop path 0.3, as for T).
# The official config starts from vssmbase_dp05_ckpt_epoch_260.pth, which was never published; this one
# starts from the released vanilla VMamba-B classifier (drop path 0.6, epoch 241).
_base_ = './upernet_vmamba-vanilla-tiny.py'

model = dict(
    backbone=dict(
        arch='vanilla-base',
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v0cls/vssmbase_dp06_ckpt_epoch_241.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
