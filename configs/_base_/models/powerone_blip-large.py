# BLIP-large ITM (COCO fine-tuned) at 512 px with ImageNet mean/std, as the
# paper's reference code uses it. Layers are 0-based text-encoder layers;
# [0, 3] is the reference's InfoScore top-2 for BLIP-large on PASCAL VOC.
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
        pretrained='Salesforce/blip-itm-large-coco',
        prompt_chunk=64),
    class_names=None,  # set by the experiment config
    prompt_templates=['Image of {}.'],
    multi_prompt=False,
    layers=[0, 3],
    itm_reduce='max',
    map_mode='attention',
    test_cfg=dict(mode='whole'))
