# VLMAttentionSegmentor on LLaVA-1.5-7B (llava-hf/llava-1.5-7b-hf): CLIP
# ViT-L/14 at 336 px (a 24 x 24 grid of image tokens), Vicuna-7B with 32
# decoder layers. The prompt of a class is its name; the adapter asks
# "Is there a {name} in the image? Answer yes or no." and uses P(yes) as the
# matching score. bfloat16 on GPU, float32 on CPU.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.771, 116.746, 104.094],
    std=[68.501, 66.632, 70.323],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=14)
model = dict(
    type='VLMAttentionSegmentor',
    data_preprocessor=data_preprocessor,
    vlm=dict(type='LLaVAAdapter', pretrained='llava-hf/llava-1.5-7b-hf',
             question='Is there a {} in the image? Answer yes or no.',
             template='USER: <image>\n{} ASSISTANT:',
             answers=('Yes', 'No'), torch_dtype='auto', prompt_chunk=16),
    class_names=None,  # set by the experiment config
    prompt_templates=['{}'],
    multi_prompt=False,
    map_mode='attention',
    test_cfg=dict(mode='whole'))
