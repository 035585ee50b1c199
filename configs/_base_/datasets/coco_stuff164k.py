# COCO-Stuff164k val2017, 171 classes, mmseg's layout (data/coco_stuff164k,
# *_labelTrainIds.png from mmseg's tools/dataset_converters/coco_stuff164k.py);
# short side 512.
_base_ = ['mmseg::_base_/datasets/coco-stuff164k.py']

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_cfg = dict(type='ValLoop')
