# One-shot fine-tuning of the tiny ALBEF on the embedded shapes world: the
# tiny BLIP's one-shot config with the VLM swapped (word embeddings and the
# cross-attention of the top-2 InfoScore fusion layers train).
_base_ = ['./powerone_blip-tiny_oneshot_shapes.py']
model = dict(
    # its ITM was trained at every token: the reference reduction
    itm_reduce='max',
    vlm=dict(
        _delete_=True,
        type='ALBEFAdapter',
        checkpoint='{{fileDirname}}/../../checkpoints/albef-tiny-shapes/albef.pth',
        tokenizer='{{fileDirname}}/../../checkpoints/albef-tiny-shapes',
        vision_heads=4,
        text_heads=4))
