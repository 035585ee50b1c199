"""Pretraining the embedded tiny BLIP, ALBEF or LLaVA on synthetic
image-caption pairs, from captions only (never a mask); what it trains and
how is the command's help (``tools/pretrain_vlm.py``,
``mmseg_powerone.commands.pretrain_vlm``).

The parts: ``arches`` (each architecture: build, run, save, its adapter's
module paths), ``steps`` (the objectives), ``report`` (presence AUROC,
the README saved with the weights), ``loop`` (the run).
"""
from .arches import (ARCHES, LLAVA_WORDS, WORDS, AlbefArch, BlipArch,
                     LlavaArch, build_model)
from .loop import pretrain
from .report import heldout_presence_auroc, write_readme
from .steps import (ATTRIBUTE_ROW, CAPTION_ROW, STEPS, YES_NO_ROW, bow_stage,
                    itc_itm_step, itm_loss, layer_drop, llava_logits,
                    llava_rows, llava_step, mask_tokens, to_pixels, tokenize)

__all__ = ['ARCHES', 'ATTRIBUTE_ROW', 'AlbefArch', 'BlipArch', 'CAPTION_ROW',
           'LLAVA_WORDS', 'LlavaArch', 'STEPS', 'WORDS', 'YES_NO_ROW',
           'bow_stage', 'build_model', 'heldout_presence_auroc',
           'itc_itm_step', 'itm_loss', 'layer_drop', 'llava_logits',
           'llava_rows', 'llava_step', 'mask_tokens', 'pretrain', 'to_pixels',
           'tokenize', 'write_readme']
