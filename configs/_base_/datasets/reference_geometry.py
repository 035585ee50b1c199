# The reference code's test geometry, for the paper's benchmarks: the longer
# side to 512, both sides floored to a multiple of 8, black padding at the
# bottom/right to 512 x 512 (the padding goes through the VLM). Labels are
# loaded first and take the same resize (nearest) and padding (255,
# ignored), so that a model with test_cfg.pred_grid='input' is scored on
# that 512 x 512 grid, as the reference scores it.
reference_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeLongestEdgePad', size=512, size_divisor=8),
    # img_padding_size lets pred_grid='original' undo the padding
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                    'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                    'reduce_zero_label', 'img_padding_size')),
]
