# Training-free segmentation of PASCAL VOC (21 classes, background synonyms)
# with LLaVA-1.5-7B: the decoder's attention from the class-name tokens to
# the 24 x 24 image tokens; InfoScore picks the top-2 of its 32 layers.
# Needs a GPU in practice (7B parameters, one language-model pass per prompt).
_base_ = [
    '../_base_/models/powerone_llava-1.5-7b.py',
    '../_base_/datasets/pascal_voc21.py',
    '../_base_/default_runtime.py',
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(336, 336), keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/voc21.txt',
    layers='infoscore',
    topk=2)
custom_hooks = [dict(type='InfoScoreHook', num_images=100)]
train_dataloader = None
