# The shipped tiny BLIP (checkpoints/blip-tiny-shapes):
#   python tools/pretrain_vlm.py configs/pretrain/blip-tiny-shapes.py
# Keys are tools/pretrain_vlm.py's options; options given after the recipe
# override it. About 23 min on 2 CPU threads; deterministic.
arch = 'blip'
out = 'checkpoints/blip-tiny-shapes'
overwrite = True
seed = 0
steps = 1300
bow_steps = 800      # bag-of-words warm-up of the vision encoder
bow_pool = 'max'     # each caption word predicted by its best patch
batch = 32
negatives = 1        # word-swap negatives per image (plus one mined)
itc_weight = 0.5
pool = 20000         # pretraining images
heldout = 600        # held-out images for presence AUROC
log_every = 100
itm_tokens = 'first'  # the ITM loss reads the first token, as BLIP's does
caption_weight = 0.5  # captioning through the shared cross-attention
