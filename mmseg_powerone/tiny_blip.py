"""Tiny BLIP models in the official Hugging Face format.

Real BLIP weights cannot be downloaded everywhere (CI, air-gapped clusters),
so tests and benchmarks build small models of the real architecture with
random weights, saved with ``save_pretrained`` exactly as a downloaded
checkpoint is laid out; the embedded world's pretrained tiny VLM uses the
same builders.
"""
import os
import string
from typing import Iterable, Optional

import torch

SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[DEC]',
                  '[ENC]']
BASE_WORDS = ['image', 'of', 'a', 'an', 'and', 'the', 'in', 'with', '.', ',']


def build_vocab(words: Iterable[str] = ()) -> list:
    """Special tokens, the given words, and single letters (plain and
    '##'-continued) so that any lower-case word can be tokenised."""
    vocab = list(SPECIAL_TOKENS)
    for w in list(BASE_WORDS) + [w.lower() for w in words]:
        if w not in vocab:
            vocab.append(w)
    for ch in string.ascii_lowercase + string.digits:
        for piece in (ch, '##' + ch):
            if piece not in vocab:
                vocab.append(piece)
    return vocab


def save_tokenizer(out_dir: str, words: Iterable[str] = ()):
    """Write a BERT word-piece tokenizer with a small vocabulary."""
    from transformers import BertTokenizer
    os.makedirs(out_dir, exist_ok=True)
    vocab = {piece: i for i, piece in enumerate(build_vocab(words))}
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, bos_token='[DEC]')
    tok.save_pretrained(out_dir)
    return tok


def tiny_blip_config(vocab_size: int, image_size: int = 64,
                     patch_size: int = 16, text_layers: int = 3,
                     text_dim: int = 32, text_heads: int = 4,
                     vision_layers: int = 2, vision_dim: int = 48,
                     vision_heads: int = 4, max_tokens: int = 64,
                     embed_dim: int = 32):
    """A ``BlipConfig`` of the BLIP ITM architecture at a tiny size."""
    from transformers import BlipConfig
    text = dict(vocab_size=vocab_size, hidden_size=text_dim,
                encoder_hidden_size=vision_dim,
                intermediate_size=4 * text_dim,
                num_hidden_layers=text_layers, num_attention_heads=text_heads,
                max_position_embeddings=max_tokens, pad_token_id=0,
                bos_token_id=SPECIAL_TOKENS.index('[DEC]'),
                sep_token_id=SPECIAL_TOKENS.index('[SEP]'), is_decoder=True)
    vision = dict(hidden_size=vision_dim, intermediate_size=4 * vision_dim,
                  num_hidden_layers=vision_layers,
                  num_attention_heads=vision_heads, image_size=image_size,
                  patch_size=patch_size, initializer_range=0.02)
    return BlipConfig(text_config=text, vision_config=vision,
                      image_text_hidden_size=embed_dim,
                      projection_dim=embed_dim)


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
