# Semantic FPN (Kirillov et al., Panoptic FPN's semantic branch: mmseg's FPN neck + FPNHead, which
# upsamples every pyramid level to stride 4 and sums them) on an ImageNet-pretrained VMamba-T, for the
# 150 classes of ADE20K; the segmentor of PVT's and PoolFormer's ADE20K comparisons. No auxiliary head.
# The backbone loads the official classification checkpoint as released (vmamba_mm converts its key
# layout while loading).

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='VMamba',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth')),
    neck=dict(type='FPN', in_channels=[96, 192, 384, 768], out_channels=256, num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=128,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
