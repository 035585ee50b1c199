"""The embedded world's tiny VLMs: builders of the real BLIP, ALBEF and
LLaVA architectures at a tiny size, and their small tokenizers.

The shipped tiny checkpoints are these models pretrained on the world's
captions (``mmseg_powerone.shapes.pretrain``); tests and benchmarks save
them with random weights in the official formats
(``mmseg_powerone.testing``).
"""
import os
import string
from typing import Iterable

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


def tiny_albef_model(vocab_size: int, image_size: int = 64,
                     patch_size: int = 16, text_layers: int = 4,
                     fusion_layer: int = 1, text_dim: int = 32,
                     text_heads: int = 4, vision_layers: int = 2,
                     vision_dim: int = 48, vision_heads: int = 4,
                     max_tokens: int = 64, embed_dim: int = 32):
    """An :class:`~mmseg_powerone.models.vlms.albef.ALBEFModel` of the
    ALBEF architecture at a tiny size (default initialisation)."""
    from transformers import BertConfig

    from ..models.vlms.albef import ALBEFModel
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


LLAVA_SPECIAL = ['<unk>', '<s>', '</s>', '<pad>']
LLAVA_BASE_WORDS = ['USER', 'ASSISTANT', ':', 'Is', 'is', 'there', 'a', 'an',
                    'in', 'the', 'image', '?', 'Answer', 'yes', 'or', 'no',
                    '.', 'Yes', 'No', 'of', 'photo', ',']


def save_llava_tokenizer(out_dir: str, words: Iterable[str] = ()):
    """A word-level fast tokenizer (BOS added, '<image>' special)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {}
    for w in LLAVA_SPECIAL + LLAVA_BASE_WORDS + list(words):
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


def tiny_llava_config(tok, image_size: int = 64, patch_size: int = 16,
                      text_layers: int = 3, text_dim: int = 32,
                      text_heads: int = 4, kv_heads: int = 2,
                      vision_layers: int = 2, vision_dim: int = 32):
    """A ``LlavaConfig`` of the llava-hf architecture at a tiny size (CLIP
    ViT, 2-layer projector, Llama with grouped-query attention) for the
    tokenizer ``tok``."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
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
    return LlavaConfig(vision_config=vision, text_config=text,
                       image_token_id=tok.convert_tokens_to_ids('<image>'),
                       vision_feature_layer=-2,
                       vision_feature_select_strategy='default')
