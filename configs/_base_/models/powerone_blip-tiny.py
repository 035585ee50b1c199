# The embedded tiny BLIP (checkpoints/blip-tiny-shapes, made by
# tools/pretrain_vlm.py on synthetic captions): same BLIPAdapter as real BLIP.
# Its ITM was trained at the first token only (--itm-tokens first, as BLIP
# trains its own, beside a captioning loss through the same cross-attention),
# so the matching score is read there, not as the max over tokens that the
# reference code takes from real BLIP.
_base_ = ['./powerone_blip.py']
model = dict(
    itm_reduce='first',
    vlm=dict(pretrained='{{fileDirname}}/../../../checkpoints/blip-tiny-shapes'))
