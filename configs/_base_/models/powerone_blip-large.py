# BLIP-large ITM (COCO fine-tuned) at 512 px, as the paper's reference code
# uses it. Layers are 0-based text-encoder layers; [0, 3] is the reference's
# InfoScore top-2 for BLIP-large on PASCAL VOC.
_base_ = ['./powerone_blip.py']
model = dict(
    vlm=dict(pretrained='Salesforce/blip-itm-large-coco'),
    layers=[0, 3])
