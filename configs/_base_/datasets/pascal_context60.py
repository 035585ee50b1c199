# PASCAL Context val, 60 classes (background included), mmseg's layout
# (data/VOCdevkit/VOC2010, SegmentationClassContext); short side 512.
_base_ = ['mmseg::_base_/datasets/pascal_context.py']

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_cfg = dict(type='ValLoop')
