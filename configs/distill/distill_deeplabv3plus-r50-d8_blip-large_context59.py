# A stock mmseg DeepLabV3+ R-50 student for PASCAL Context (59 classes, no
# background), trained on the pseudo-labels of the paper-setting BLIP-large
# teacher (powerone_blip-large_zeroshot_context59.py) with MaskCLIP+'s
# recipe for Context: 480 x 480 crops, 40k iterations of SGD, no label of
# the training images. Make the labels, train, test:
#
#   python tools/pseudo_label.py \
#       configs/powerone/powerone_blip-large_zeroshot_context59.py \
#       --data-config configs/distill/distill_deeplabv3plus-r50-d8_blip-large_context59.py \
#       --out work_dirs/pseudo_labels/blip-large_context59
#   python tools/train.py configs/distill/distill_deeplabv3plus-r50-d8_blip-large_context59.py
#   python tools/test.py configs/distill/distill_deeplabv3plus-r50-d8_blip-large_context59.py \
#       work_dirs/distill_deeplabv3plus-r50-d8_blip-large_context59/iter_40000.pth
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
# the student is stock mmseg; the plugin brings the dataset wrapper that reads
# the pseudo-labels
custom_imports = dict(imports=['mmseg_powerone'], allow_failed_imports=False)
crop_size = (480, 480)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=59),
    auxiliary_head=dict(num_classes=59),
    test_cfg=dict(mode='slide', crop_size=(480, 480), stride=(320, 320)))
# The pseudo-labels are the teacher's 59 class indices already: unlike the
# dataset's own label maps (0 = unlabelled), they are not shifted down.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale={{_base_.img_scale}}, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
pseudo_dir = 'work_dirs/pseudo_labels/blip-large_context59'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='PseudoLabelDataset',
        pseudo_dir=pseudo_dir,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            data_prefix=dict(img_path='JPEGImages'),
            ann_file='ImageSets/SegmentationContext/train.txt',
            pipeline=train_pipeline)))
