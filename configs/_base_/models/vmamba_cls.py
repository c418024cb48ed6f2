# VMamba image classifier: backbone -> last stage's LayerNorm (the backbone's `outnorm3`) -> global
# average pooling -> linear head, i.e. the official model's `classifier` (norm, avgpool, head).
# Mixup 0.8 / CutMix 1.0 are batch augments chosen with equal probability per batch (the official
# switch probability 0.5); label smoothing 0.1 is applied to the mixed targets.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VMamba', arch='tiny', out_indices=(3, ), drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
