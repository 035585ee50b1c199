# Training-free segmentation of the embedded shapes world with the tiny BLIP:
# InfoScore picks the top-2 attention layers on unlabeled test images.
_base_ = [
    '../_base_/models/powerone_blip-tiny.py',
    '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/shapes.txt',
    layers='infoscore',
    topk=2)
custom_hooks = [dict(type='InfoScoreHook', num_images=100)]
# Training-free: no training schedule, so no training data either.
train_dataloader = None
