# RetinaNet with FPN (mmdet's R50 RetinaNet definition: focal loss, 9 anchors per position on P3-P7)
# on an ImageNet-pretrained VMamba-T. As for Swin in mmdet, the backbone returns only the stages the
# FPN reads (strides 8, 16, 32), so stage 0 gets no output norm that nothing would train; the FPN
# builds P6 and P7 from the last stage's output ('on_input'). The backbone loads the official
# classification checkpoint as released (vmamba_mm converts its key layout while loading).
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='VMamba',
        arch='tiny',
        out_indices=(1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/MzeroMiko/VMamba/releases/download/'
            '%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth')),
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_input', num_outs=5))
