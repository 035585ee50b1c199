# The paper's one-shot protocol on COCO-Object (background + 80 things), as
# the reference code runs it: supports drawn from the evaluation list (the
# reference's lists/coco/val.txt: COCO-2014 val images with DIaM's 81-class
# label maps, val2014/ + val_contain_crowd/) and removed from it; the
# reference's geometry and grid; two supports per step, one NLL (AdamW
# 2e-4, 2 passes); CRF on. Report 5 draws:
#   python tools/oneshot_eval.py THIS_CONFIG --draws 5
_base_ = ['./powerone_blip-large_oneshot-protocol_voc21.py']
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/coco_object.txt')
train_cfg = dict(max_epochs=2)

coco_list = dict(
    type='COCOObjectDataset',
    data_root='data/coco2014',
    # "IMAGE LABEL" lines, e.g. val2014/COCO_val2014_000000000042.jpg
    # val_contain_crowd/COCO_val2014_000000000042.png
    ann_file='lists/coco/val.txt',
    data_prefix=dict(img_path='val2014', seg_map_path='val_contain_crowd'),
    pipeline={{_base_.reference_pipeline}})
train_dataloader = dict(dataset=dict(dataset=coco_list))
test_dataloader = dict(dataset=dict(dataset=coco_list))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
