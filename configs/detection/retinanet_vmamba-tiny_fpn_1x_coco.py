# RetinaNet (one-stage: a dense anchor head with focal loss, no RPN, no RoI heads) on an ImageNet-pretrained
# VMamba-T, COCO boxes. Trained with the AdamW 1x schedule of the Mask R-CNN configs (lr 1e-4 for 16 images,
# weight decay 0.05 except on the backbone norms the official recipe exempts, lr / 10 after epochs 8 and 11)
# rather than mmdet's SGD for ResNet RetinaNets, as transformer backbones train their detectors. The VMamba
# paper reports no RetinaNet: this config has no published result.
_base_ = [
    '../_base_/models/retinanet_vmamba-tiny_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/mask-rcnn_adamw_1x.py',
    '../_base_/default_runtime_det.py',
]
