# Offline demo: a small VMamba trained from scratch on scikit-learn's handwritten digits (1,797 8x8
# scans, 10 classes, upsampled to 32x32 by tools/dataset_converters/make_digits_demo.py -> data/digits)
# in a few minutes on 2 CPU cores. It keeps the ImageNet recipe's shape (AdamW without decay on 1-D
# parameters and biases, warm-up + per-iteration cosine, clipping, label smoothing, EMA with both
# weights evaluated) at a from-scratch learning rate and a short EMA horizon; no Mixup/CutMix or
# RandAugment, which need more epochs than a demo has.
_base_ = [
    '../_base_/models/vmamba_cls.py',
    '../_base_/schedules/imagenet_bs1024_adamw_vmamba.py',
    '../_base_/default_runtime_cls.py',
]

data_root = 'data/digits'
image_size = 32

model = dict(
    # Three stages (8x8, 4x4, 2x2 maps for 32x32 digits): a fourth would scan a single pixel.
    backbone=dict(arch=dict(_delete_=True, dims=32, depths=(1, 2, 1), ssm_ratio=1.0, d_state=1),
                  out_indices=(2, ), drop_path_rate=0.0),
    head=dict(num_classes=10, in_channels=128),
    train_cfg=None,
)

data_preprocessor = dict(num_classes=10, mean=[127.5] * 3, std=[127.5] * 3)

# Data checked at the door: an unreadable image or a label past the head's classes stops the run naming
# the file (vmamba_mm.datasets.CheckedLoadImageFromFile, CheckClassLabels).
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomCrop', crop_size=image_size, padding=2),
    dict(type='CheckClassLabels', num_classes=data_preprocessor['num_classes']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckClassLabels', num_classes=data_preprocessor['num_classes']),
    dict(type='PackInputs'),
]

# Data loads in the main process; persistent_workers is stated because upstream train scripts default it to
# True, which a DataLoader refuses without workers.
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', test_mode=True,
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 12
# The recipe's AdamW, decay exemptions and clipping, in float32 (tools/train.py --amp turns on bfloat16).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
auto_scale_lr = dict(base_batch_size=64)

# 23 steps per epoch: decay 0.99 averages over the last ~4 epochs (ImageNet's 0.9999 spans ~8).
custom_hooks = [
    dict(type='EMAHook', momentum=1e-2, update_buffers=True, evaluate_on_ema=True, evaluate_on_origin=True,
         priority='ABOVE_NORMAL'),
]

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=2))
