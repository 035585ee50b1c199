"""Tiny ALBEF models in the official checkpoint format (``{'model':
state_dict}``, text encoder under ``text_encoder.bert.``), with a BERT
tokenizer directory: what tests and the embedded world use where a real
``ALBEF.pth`` cannot be downloaded."""
import os
from typing import Iterable

import torch

from .tiny_blip import _randomize, save_tokenizer


def tiny_albef_model(vocab_size: int, image_size: int = 64,
                     patch_size: int = 16, text_layers: int = 4,
                     fusion_layer: int = 1, text_dim: int = 32,
                     text_heads: int = 4, vision_layers: int = 2,
                     vision_dim: int = 48, vision_heads: int = 4,
                     max_tokens: int = 64, embed_dim: int = 32):
    """An :class:`~mmseg_powerone.models.adapters.albef.ALBEFModel` of the
    ALBEF architecture at a tiny size (default initialisation)."""
    from transformers import BertConfig

    from .models.adapters.albef import ALBEFModel
    text = BertConfig(vocab_size=vocab_size, hidden_size=text_dim,
                      num_hidden_layers=text_layers,
                      num_attention_heads=text_heads,
                      intermediate_size=4 * text_dim,
                      max_position_embeddings=max_tokens, pad_token_id=0,
                      layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)
    text.fusion_layer, text.encoder_width = fusion_layer, vision_dim
    vision = dict(dim=vision_dim, depth=vision_layers, num_heads=vision_heads,
                  mlp_hidden=4 * vision_dim, patch_size=patch_size,
                  num_patches=(image_size // patch_size) ** 2)
    return ALBEFModel(vision, text, embed_dim)


def save_random_albef(out_dir: str, seed: int = 0, words: Iterable[str] = (),
                      **config_kwargs) -> str:
    """Write ``albef.pth`` (random weights, official layout) and a BERT
    tokenizer into ``out_dir``; returns ``out_dir``. The adapter needs
    ``vision_heads`` and ``text_heads`` as built (4 by default)."""
    from .models.adapters.albef import save_albef
    tok = save_tokenizer(out_dir, words)
    torch.manual_seed(seed)
    model = tiny_albef_model(vocab_size=len(tok), **config_kwargs)
    _randomize(model, seed)
    save_albef(model, os.path.join(out_dir, 'albef.pth'))
    return out_dir
