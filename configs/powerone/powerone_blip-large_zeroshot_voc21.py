# Training-free segmentation of PASCAL VOC (21 classes, background synonyms
# as in the reference) with BLIP-large's cross-attention, top-2 layers: the
# paper's protocol as its reference code runs it. Aspect-preserving resize
# and black padding to 512 x 512, IoU on that grid (padding ignored), CRF
# on (20 iterations). For mmseg's usual scoring at each image's original
# size: --cfg-options model.test_cfg.pred_grid=original
_base_ = [
    '../_base_/models/powerone_blip-large.py',
    '../_base_/datasets/pascal_voc21_reference.py',
    '../_base_/default_runtime.py',
]
model = dict(
    class_names='{{fileDirname}}/../_base_/class_names/voc21.txt',
    crf=dict(type='ConvCRF', iters=20),
    test_cfg=dict(mode='whole', pred_grid='input'))
# Training-free: no training schedule, so no training data either.
train_dataloader = None
