# VMamba-T's ImageNet recipe (model, AdamW, EMA, schedule) on ImageNet-shaped random data held in memory:
# for measuring training throughput and checking launches (one GPU, torchrun, SLURM) without ImageNet
# on disk. Its accuracy means nothing. One epoch of `num_samples` images (the GPUs share them):
#   bash tools/dist_train.sh configs/classification/vmamba-tiny_synthetic-in1k.py 8 --amp
#   python tools/analysis_tools/analyze_logs.py cal_train_time \
#       work_dirs/vmamba-tiny_synthetic-in1k/*/vis_data/scalars.json --skip-iters 20 --images-per-iter 1024
_base_ = ['./vmamba-tiny_8xb128-300e_in1k.py']

train_dataloader = dict(
    num_workers=4,
    persistent_workers=True,
    dataset=dict(_delete_=True, type='SyntheticImageNet', num_samples=128 * 8 * 100,
                 pipeline=[dict(type='PackInputs')]))
train_cfg = dict(max_epochs=1, val_interval=2)  # no evaluation
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=-1, save_last=False))
