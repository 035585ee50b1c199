# Training-free segmentation of COCO-Object (background + 80 things; the
# reference's background synonyms) with BLIP-large, in the reference code's
# protocol: aspect-preserving resize and black padding to 512 x 512, IoU on
# that grid, CRF on (20 iterations). The images are COCO-2017 val (5,000,
# the COCO-Object of the CLIP-family papers); the reference scores the first
# 10,000 images of its COCO-2014 val list instead (docs/en/reference_differences.md
# says how to run that).
_base_ = [
    '../_base_/models/powerone_blip-large.py',
    '../_base_/datasets/coco_object_reference.py',
    '../_base_/default_runtime.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/coco_object.txt',
    has_background=True,
    crf=dict(type='ConvCRF', iters=20),
    test_cfg=dict(mode='whole', pred_grid='input'))
# Training-free: no training schedule, so no training data either.
train_dataloader = None
