# A stock mmseg DeepLabV3+ R-50 student for PASCAL VOC (21 classes),
# trained on the pseudo-labels of the paper-setting BLIP-large teacher
# (powerone_blip-large_zeroshot_voc21.py) with MaskCLIP+'s recipe: 512 x 512
# crops, 20k iterations of SGD, ImageNet-initialised backbone, no label of
# the training images. Make the labels, train, test:
#
#   python tools/pseudo_label.py \
#       configs/powerone/powerone_blip-large_zeroshot_voc21.py \
#       --data-config configs/distill/distill_deeplabv3plus-r50-d8_blip-large_voc21.py \
#       --out work_dirs/pseudo_labels/blip-large_voc21 \
#       --cfg-options model.test_cfg.pred_grid=original
#   python tools/train.py configs/distill/distill_deeplabv3plus-r50-d8_blip-large_voc21.py
#   python tools/test.py configs/distill/distill_deeplabv3plus-r50-d8_blip-large_voc21.py \
#       work_dirs/distill_deeplabv3plus-r50-d8_blip-large_voc21/iter_20000.pth
#
# (pred_grid=original: labels on each image's own grid, not the reference
# code's padded 512 x 512 one.) The train list is VOC 2012's train split
# (1,464 images); MaskCLIP+ labels the 10,582 of the augmented list
# (mmseg's voc_aug converter writes ImageSets/Segmentation/aug.txt; its
# images are all in JPEGImages): --cfg-options
# train_dataloader.dataset.dataset.ann_file=ImageSets/Segmentation/aug.txt
# (and the same --data-cfg-options when labelling).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    'mmseg::_base_/datasets/pascal_voc12.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
# the student is stock mmseg; the plugin brings the dataset wrapper that reads
# the pseudo-labels
custom_imports = dict(imports=['mmseg_powerone'], allow_failed_imports=False)
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=21),
    auxiliary_head=dict(num_classes=21))

pseudo_dir = 'work_dirs/pseudo_labels/blip-large_voc21'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='PseudoLabelDataset',
        pseudo_dir=pseudo_dir,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            data_prefix=dict(img_path='JPEGImages'),
            ann_file='ImageSets/Segmentation/train.txt',
            pipeline={{_base_.train_pipeline}})))
