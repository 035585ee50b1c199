# Training-free segmentation of COCO-Object (background + 80 things; the
# reference's background synonyms) with BLIP-large at 512 x 512.
_base_ = [
    '../_base_/models/powerone_blip-large.py',
    '../_base_/datasets/coco_object.py',
    '../_base_/default_runtime.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/coco_object.txt',
    has_background=True)
# Training-free: no training schedule, so no training data either.
train_dataloader = None
