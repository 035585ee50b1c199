# Training-free segmentation of PASCAL VOC (21 classes, background synonyms)
# with ALBEF's fusion-layer cross-attention; InfoScore picks the top-2 of its
# 6 attention layers on 100 unlabeled test images.
_base_ = [
    '../_base_/models/powerone_albef.py',
    '../_base_/datasets/pascal_voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/voc21.txt',
    layers='infoscore',
    topk=2)
custom_hooks = [dict(type='InfoScoreHook', num_images=100)]
# Training-free: no training schedule, so no training data either.
train_dataloader = None
