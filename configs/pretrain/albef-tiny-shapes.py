# The shipped tiny ALBEF (checkpoints/albef-tiny-shapes):
#   python tools/pretrain_vlm.py configs/pretrain/albef-tiny-shapes.py
# Keys are tools/pretrain_vlm.py's options; options given after the recipe
# override it. Deterministic.
arch = 'albef'
out = 'checkpoints/albef-tiny-shapes'
overwrite = True
text_layers = 6
fusion_layer = 2     # first text layer with cross-attention
seed = 0
steps = 1300
bow_steps = 800
bow_pool = 'max'
batch = 32
negatives = 1
itc_weight = 0.5
pool = 20000
heldout = 600
log_every = 100
