# UperNet on an ImageNet-pretrained VMamba-B.
_base_ = './upernet_vmamba-tiny.py'

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v2cls/vssm_base_0229_ckpt_epoch_237.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
