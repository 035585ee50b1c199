# The shipped tiny ALBEF (checkpoints/albef-tiny-shapes):
#   python tools/pretrain_vlm.py configs/pretrain/albef-tiny-shapes.py
# Keys are tools/pretrain_vlm.py's options; options given after the recipe
# override it. About 27 min on 2 CPU threads; deterministic.
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
mlm_weight = 1.0     # masked language modelling through the fusion layers
mlm_prob = 0.3       # share of caption tokens masked (short captions)
