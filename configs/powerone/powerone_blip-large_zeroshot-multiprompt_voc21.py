# Multi-prompt variant: every synonym in the class-name file is a prompt
# (the max over a class's prompts is its map), as the reference's
# --multi_prompt.
_base_ = ['./powerone_blip-large_zeroshot_voc21.py']
model = dict(multi_prompt=True)
