# VLMAttentionSegmentor on ALBEF (the official image-text checkpoints: the
# 14M-image pretraining ALBEF.pth, ALBEF_4M.pth, or the COCO / Flickr
# retrieval fine-tunes). ALBEF normalises with CLIP's mean/std and reads
# 384 px in its retrieval fine-tunes; other sizes interpolate its position
# embedding. Attention layers are the 6 fusion layers (0 = BERT layer 6).
# Download the checkpoint from the ALBEF repository's README and set
# vlm.checkpoint to it; the tokenizer is bert-base-uncased.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.771, 116.746, 104.094],
    std=[68.501, 66.632, 70.323],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=16)
model = dict(
    type='VLMAttentionSegmentor',
    data_preprocessor=data_preprocessor,
    vlm=dict(type='ALBEFAdapter', checkpoint='data/pretrained/ALBEF/mscoco.pth',
             tokenizer='bert-base-uncased', vision_heads=12, text_heads=12,
             prompt_chunk=64),
    class_names=None,  # set by the experiment config
    prompt_templates=['Image of {}.'],
    multi_prompt=False,
    itm_reduce='max',
    map_mode='attention',
    test_cfg=dict(mode='whole'))
