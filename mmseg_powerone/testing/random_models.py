"""Tiny VLMs with random weights, saved in the official formats (a
Hugging Face ``save_pretrained`` folder, ALBEF's ``{'model': state_dict}``):
what tests and benchmarks load where real checkpoints cannot be downloaded.
"""
import os
from typing import Iterable, Optional

import torch

from ..shapes.tiny_vlms import (save_llava_tokenizer, save_tokenizer,
                                tiny_albef_model, tiny_blip_config,
                                tiny_llava_config)


def save_random_blip(out_dir: str, seed: int = 0,
                     words: Iterable[str] = (), config=None,
                     **config_kwargs) -> str:
    """Save a randomly initialised tiny ``BlipForImageTextRetrieval`` and its
    tokenizer to ``out_dir`` (the layout of a Hugging Face download)."""
    from transformers import BlipForImageTextRetrieval
    tok = save_tokenizer(out_dir, words)
    if config is None:
        config = tiny_blip_config(vocab_size=len(tok), **config_kwargs)
    torch.manual_seed(seed)
    model = BlipForImageTextRetrieval(config)
    _randomize(model, seed)
    model.save_pretrained(out_dir)
    return out_dir


def save_random_albef(out_dir: str, seed: int = 0, words: Iterable[str] = (),
                      **config_kwargs) -> str:
    """Write ``albef.pth`` (random weights, official layout) and a BERT
    tokenizer into ``out_dir``; returns ``out_dir``. The adapter needs
    ``vision_heads`` and ``text_heads`` as built (4 by default)."""
    from ..models.vlms.albef import save_albef
    tok = save_tokenizer(out_dir, words)
    torch.manual_seed(seed)
    model = tiny_albef_model(vocab_size=len(tok), **config_kwargs)
    _randomize(model, seed)
    save_albef(model, os.path.join(out_dir, 'albef.pth'))
    return out_dir


def save_random_llava(out_dir: str, seed: int = 0, words: Iterable[str] = (),
                      **config_kwargs) -> str:
    """Save a random tiny LLaVA (:func:`tiny_llava_config`) and its
    tokenizer to ``out_dir``, as ``save_pretrained`` lays out a download."""
    from transformers import LlavaForConditionalGeneration
    os.makedirs(out_dir, exist_ok=True)
    tok = save_llava_tokenizer(out_dir, words)
    config = tiny_llava_config(tok, **config_kwargs)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    _randomize(model, seed)
    model.save_pretrained(out_dir)
    return out_dir


def _randomize(model, seed: int, std: Optional[float] = 0.5):
    """Give every weight visible random values: the default initialisation
    of tiny models yields nearly uniform attention, which would make tests
    of attention maps vacuous."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'LayerNorm' in name or 'layernorm' in name or \
                    'layer_norm' in name or p.dim() == 0:
                continue
            p.copy_(torch.randn(p.shape, generator=g) * std / max(1, p.shape[-1]) ** 0.5)
