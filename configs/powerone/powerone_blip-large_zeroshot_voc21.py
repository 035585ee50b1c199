# Training-free segmentation of PASCAL VOC (21 classes, background synonyms
# as in the reference) with BLIP-large's cross-attention, top-2 layers.
_base_ = [
    '../_base_/models/powerone_blip-large.py',
    '../_base_/datasets/pascal_voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(class_names='{{fileDirname}}/../_base_/class_names/voc21.txt')
# Training-free: no training schedule, so no training data either.
train_dataloader = None
