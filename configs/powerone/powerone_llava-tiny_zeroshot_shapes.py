# Training-free segmentation of the embedded shapes world with the tiny
# LLaVA (checkpoints/llava-tiny-shapes, made by `tools/pretrain_vlm.py
# configs/pretrain/llava-tiny-shapes.py` on the same synthetic captions as
# the tiny BLIP): the decoder's attention from the class-name tokens of its
# yes/no question to the image tokens, re-weighted by P(yes). The BLIP config
# with the VLM swapped, so the quickstart's tables differ only in the VLM
# (same preprocessing: the tiny LLaVA was pretrained with it).
_base_ = ['./powerone_blip-tiny_zeroshot_shapes.py']
model = dict(
    prompt_templates=['{}'],  # the adapter puts the name into its question
    vlm=dict(
        _delete_=True,
        type='LLaVAAdapter',
        pretrained='{{fileDirname}}/../../checkpoints/llava-tiny-shapes',
        question='Is there a {} in the image? Answer yes or no.',
        template='USER: <image>\n{} ASSISTANT:',
        answers=('Yes', 'No'),
        torch_dtype='float32'))
