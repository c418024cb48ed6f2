# The classification demo made comparable across world sizes for the distributed launch tests: no
# random augmentation (RandomCrop would draw different crops in each process), 256 training images,
# 2 epochs, every rank's losses and placement recorded, and a rank that can be made to die (dist_probe.py).
_base_ = ['../../../configs/classification/vmamba-demo_digits.py']

custom_imports = dict(imports=['dist_probe'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(indices=256, pipeline=_base_.test_pipeline))
val_dataloader = dict(dataset=dict(indices=64))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=2)
# 2x the demo's batch: --auto-scale-lr halves the learning rate of a 32-image batch, however it is split.
auto_scale_lr = dict(base_batch_size=64)

custom_hooks = [*_base_.custom_hooks, dict(type='RankLossRecorder'), dict(type='RankPlacementRecorder'),
                dict(type='ExitRankHook')]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=1))
