# VLMAttentionSegmentor on a BLIP ITM model: the settings every BLIP config
# shares (ImageNet mean/std as the reference code uses, one template, the
# paper's attention maps). Children set vlm.pretrained and the layers.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # training batches are padded to a multiple of 32 (labels with 255)
    size_divisor=32)
model = dict(
    type='VLMAttentionSegmentor',
    data_preprocessor=data_preprocessor,
    vlm=dict(type='BLIPAdapter', pretrained=None, prompt_chunk=64),
    class_names=None,  # set by the experiment config
    prompt_templates=['Image of {}.'],
    multi_prompt=False,
    itm_reduce='max',
    map_mode='attention',
    test_cfg=dict(mode='whole'))
