# Training-free segmentation of the embedded shapes world with the tiny ALBEF
# (checkpoints/albef-tiny-shapes, made by `tools/pretrain_vlm.py
# configs/pretrain/albef-tiny-shapes.py` on the same synthetic captions as
# the tiny BLIP): the BLIP config with the VLM swapped, so the two rows of
# the quickstart differ only in the VLM.
_base_ = ['./powerone_blip-tiny_zeroshot_shapes.py']
model = dict(
    # its ITM was trained at every real token (never at padding): read it
    # there
    itm_reduce='max_real',
    vlm=dict(
        _delete_=True,
        type='ALBEFAdapter',
        checkpoint='{{fileDirname}}/../../checkpoints/albef-tiny-shapes/albef.pth',
        tokenizer='{{fileDirname}}/../../checkpoints/albef-tiny-shapes',
        vision_heads=4,
        text_heads=4))
