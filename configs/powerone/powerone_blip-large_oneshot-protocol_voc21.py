# The paper's one-shot protocol on PASCAL VOC (21 classes), as the reference
# code runs it: the supports (one per foreground class, only that class in
# the image) are drawn from the evaluation list (the reference's
# lists/pascal/val.txt over JPEGImages + SegmentationClassAug) and removed
# from it; the reference's geometry (aspect-preserving resize, black padding
# to 512 x 512) for supports, InfoScore and evaluation; IoU on that grid;
# two supports per optimiser step with one NLL over their pixels (AdamW
# 2e-4, weight decay 0.05, 5 passes in the supports' order); CRF on (20
# iterations). Report 5 draws:
#   python tools/oneshot_eval.py THIS_CONFIG --draws 5
# (which gives both sides the same seed per draw).
_base_ = [
    './powerone_blip-large_oneshot_voc21.py',
    '../_base_/datasets/reference_geometry.py',
]
model = dict(
    crf=dict(type='ConvCRF', iters=20),
    test_cfg=dict(mode='whole', pred_grid='input'))
# both supports of a step in one batch (512 x 512 each): one loss over all
# their pixels, as the reference; no accumulation
optim_wrapper = dict(accumulative_counts=1)

voc_list = dict(
    type='PascalVOCListDataset',
    data_root='data/VOCdevkit/VOC2012',
    # "IMAGE LABEL" lines, e.g. JPEGImages/2007_000033.jpg
    # SegmentationClassAug/2007_000033.png
    ann_file='lists/pascal/val.txt',
    data_prefix=dict(img_path='JPEGImages',
                     seg_map_path='SegmentationClassAug'),
    pipeline={{_base_.reference_pipeline}})
# a support holds at least 16 * 32 * 32 pixels of its class in its
# original label map, as the reference requires (absolute, not a fraction)
support_min_pixels = 16 * 32 * 32
# supports from the evaluation list ...
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_delete_=True, type='OneShotDataset', shots=1, seed=0,
                 min_pixels=support_min_pixels, dataset=voc_list))
# ... and the same draw excluded from the evaluation
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='OneShotDataset',
        exclude=True,
        shots=1,
        seed=0,
        min_pixels=support_min_pixels,
        dataset=voc_list))
