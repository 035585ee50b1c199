# Cityscapes val, 19 classes, mmseg's layout (data/cityscapes,
# *_gtFine_labelTrainIds.png from mmseg's tools/dataset_converters/
# cityscapes.py); 2048 x 1024 resized to 1024 x 512.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_cfg = dict(type='ValLoop')
