# The AdamW 160k-iteration schedule of the Swin / VMamba UperNet baselines: lr 6e-5 for a
# total batch of 16, linear warm-up over 1500 iterations from 1e-6 x lr, then linear
# (poly, power 1) decay to 0; no weight decay on the backbone's normalisation layers;
# validation and a checkpoint every 16k iterations (mmseg's 160k schedule).
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
