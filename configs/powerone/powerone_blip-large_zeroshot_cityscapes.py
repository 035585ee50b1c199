# Training-free segmentation of Cityscapes (19 classes, no background) with
# BLIP-large, sliding 512 x 512 windows over the 1024 x 512 image.
_base_ = [
    '../_base_/models/powerone_blip-large.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/cityscapes.txt',
    has_background=False,
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
# Training-free: no training schedule, so no training data either.
train_dataloader = None
