# ADE20K val, 150 classes (label 0 "other" ignored), mmseg's layout
# (data/ade/ADEChallengeData2016); short side 512.
_base_ = ['mmseg::_base_/datasets/ade20k.py']

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_cfg = dict(type='ValLoop')
