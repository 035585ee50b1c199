# Training-free segmentation of PASCAL VOC without background (20 classes)
# with BLIP-large's cross-attention, top-2 layers.
_base_ = [
    '../_base_/models/powerone_blip-large.py',
    '../_base_/datasets/pascal_voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/voc20.txt',
    has_background=False)
# Training-free: no training schedule, so no training data either.
train_dataloader = None
