# The embedded tiny BLIP (checkpoints/blip-tiny-shapes, made by
# tools/pretrain_vlm.py on synthetic captions): same BLIPAdapter as real BLIP.
_base_ = ['./powerone_blip.py']
model = dict(
    vlm=dict(pretrained='{{fileDirname}}/../../../checkpoints/blip-tiny-shapes'))
