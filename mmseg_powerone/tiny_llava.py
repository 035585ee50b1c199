"""Tiny LLaVA models in the llava-hf layout (``save_pretrained`` of a
``LlavaForConditionalGeneration`` plus a fast tokenizer with '<image>'),
for tests and benchmarks where a 7B download is impossible."""
import os
from typing import Iterable

import torch

from .tiny_blip import _randomize

SPECIAL = ['<unk>', '<s>', '</s>', '<pad>']
BASE_WORDS = ['USER', 'ASSISTANT', ':', 'Is', 'is', 'there', 'a', 'an', 'in',
              'the', 'image', '?', 'Answer', 'yes', 'or', 'no', '.', 'Yes',
              'No', 'of', 'photo', ',']


def save_llava_tokenizer(out_dir: str, words: Iterable[str] = ()):
    """A word-level fast tokenizer (BOS added, '<image>' special)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {}
    for w in SPECIAL + BASE_WORDS + list(words):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(
        single='<s> $A', special_tokens=[('<s>', vocab['<s>'])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token='<unk>',
                                   bos_token='<s>', eos_token='</s>',
                                   pad_token='<pad>')
    fast.add_special_tokens({'additional_special_tokens': ['<image>']})
    fast.save_pretrained(out_dir)
    return fast


def save_random_llava(out_dir: str, seed: int = 0, words: Iterable[str] = (),
                      image_size: int = 64, patch_size: int = 16,
                      text_layers: int = 3, text_dim: int = 32,
                      text_heads: int = 4, kv_heads: int = 2,
                      vision_layers: int = 2, vision_dim: int = 32) -> str:
    """Save a random tiny LLaVA (CLIP ViT, 2-layer projector, Llama with
    grouped-query attention) and its tokenizer to ``out_dir``."""
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration)
    os.makedirs(out_dir, exist_ok=True)
    tok = save_llava_tokenizer(out_dir, words)
    vision = CLIPVisionConfig(hidden_size=vision_dim,
                              intermediate_size=4 * vision_dim,
                              num_hidden_layers=vision_layers,
                              num_attention_heads=4, image_size=image_size,
                              patch_size=patch_size, projection_dim=vision_dim)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=text_dim,
                       intermediate_size=4 * text_dim,
                       num_hidden_layers=text_layers,
                       num_attention_heads=text_heads,
                       num_key_value_heads=kv_heads,
                       max_position_embeddings=256,
                       pad_token_id=tok.pad_token_id,
                       bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_id=tok.convert_tokens_to_ids('<image>'),
                         vision_feature_layer=-2,
                         vision_feature_select_strategy='default')
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    _randomize(model, seed)
    model.save_pretrained(out_dir)
    return out_dir
