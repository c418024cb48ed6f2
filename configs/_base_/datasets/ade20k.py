# ADE20K (ADEChallengeData2016 under data/ade/) as mmseg defines it: train on 512x512 crops
# of images rescaled around 2048x512 (ratio 0.5-2.0, flip, photometric distortion), test
# on the whole image resized to fit 2048x512; `tools/test.py --tta` runs the multi-scale
# (0.5-1.75) + flip test through `tta_pipeline` and the runtime's `tta_model`.
# Batch: 2 images per GPU x 8 GPUs.
_base_ = 'mmseg::_base_/datasets/ade20k.py'

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
