# COCO-Object (background + 80 things) through the reference code's
# geometry (see pascal_voc21_reference.py): longer side to 512, sides
# floored to multiples of 8, black padding to 512 x 512, labels through the
# same geometry with 255 padding.
_base_ = ['./coco_object.py']

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeLongestEdgePad', size=512, size_divisor=8),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                    'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                    'reduce_zero_label', 'img_padding_size')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
