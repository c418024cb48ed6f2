# UperNet on an ImageNet-pretrained VMamba-S (same stage widths as VMamba-T).
_base_ = './upernet_vmamba-tiny.py'

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v2cls/vssm_small_0229_ckpt_epoch_222.pth')))
