# One-shot fine-tuning of the tiny LLaVA on the embedded shapes world: the
# tiny BLIP's one-shot config with the VLM swapped (the language model's
# word embeddings and the self-attention of the top-2 InfoScore decoder
# layers train).
_base_ = ['./powerone_blip-tiny_oneshot_shapes.py']
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
