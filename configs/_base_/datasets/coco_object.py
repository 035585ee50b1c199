# COCO-Object val2017: background + the 80 COCO thing classes (81), label
# maps written by tools/convert_coco_object.py from the COCO instance
# annotations, in mmseg's COCO-Stuff164k layout (data/coco_object:
# images/val2017, annotations/val2017/*_instanceTrainIds.png); 512 x 512 as
# the reference code.
dataset_type = 'COCOObjectDataset'
data_root = 'data/coco_object'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 512), keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
