"""Pretrain the embedded tiny BLIP, ALBEF or LLaVA on synthetic
image-caption pairs.

The model is the real BLIP ITM architecture (Hugging Face
``BlipForImageTextRetrieval``), with ``--arch albef`` ALBEF's (this
package's ``ALBEFModel``, saved as an official-layout ``albef.pth``), or
with ``--arch llava`` LLaVA's (Hugging Face ``LlavaForConditionalGeneration``
in the llava-hf layout), at a tiny size. It learns from captions only
(never a mask). BLIP and ALBEF: image-text contrastive (ITC) and image-text
matching (ITM) with hard negatives, i.e. captions with one word swapped and
captions of other images mined from the contrastive scores (ALBEF also
masked language modelling, ``--mlm-weight``). LLaVA: captioning conditioned
on the image tokens and the yes/no question its adapter asks, about present
and absent names. Before maps are judged, it reports per-class presence
AUROC of the matching score (ITM of "Image of {name}.", or LLaVA's P(yes))
on held-out images.

The parts: ``arches`` (each architecture: build, run, save, its adapter's
module paths), ``steps`` (the objectives), ``report`` (presence AUROC,
the README saved with the weights), ``loop`` (the run). The command line is
``tools/pretrain_vlm.py`` (``mmseg_powerone.commands.pretrain_vlm``).
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
