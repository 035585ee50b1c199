# PASCAL VOC 2012 val, 21 classes, in mmseg's standard layout
# (data/VOCdevkit/VOC2012); mmseg's dataset config with the reference
# code's test resolution: 512 x 512.
_base_ = ['mmseg::_base_/datasets/pascal_voc12.py']

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 512), keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_cfg = dict(type='ValLoop')
