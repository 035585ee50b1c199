# The embedded tiny BLIP (checkpoints/blip-tiny-shapes, made by
# tools/pretrain_vlm.py on synthetic captions): same BLIPAdapter as real BLIP.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='VLMAttentionSegmentor',
    data_preprocessor=data_preprocessor,
    vlm=dict(
        type='BLIPAdapter',
        pretrained='{{fileDirname}}/../../../checkpoints/blip-tiny-shapes'),
    class_names=None,  # set by the experiment config
    prompt_templates=['Image of {}.'],
    multi_prompt=False,
    itm_reduce='max',
    map_mode='attention',
    test_cfg=dict(mode='whole'))
