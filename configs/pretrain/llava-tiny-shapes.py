# The shipped tiny LLaVA (checkpoints/llava-tiny-shapes):
#   python tools/pretrain_vlm.py configs/pretrain/llava-tiny-shapes.py
# Keys are tools/pretrain_vlm.py's options; options given after the recipe
# override it. Deterministic.
arch = 'llava'
out = 'checkpoints/llava-tiny-shapes'
overwrite = True
seed = 0
text_layers = 4      # Llama decoder layers (the attention layers ranked)
steps = 1500
bow_steps = 800      # bag-of-words warm-up of the vision tower
bow_pool = 'max'     # each caption word predicted by its best patch
batch = 32
questions = 4        # yes/no questions per image: 2 present, 2 absent names
attribute_questions = 2  # "What colour is the {name}?", "What is under the {name}?"
caption_weight = 1.0  # captioning conditioned on the image tokens
pool = 20000         # pretraining images
heldout = 600        # held-out images for presence AUROC
log_every = 100
