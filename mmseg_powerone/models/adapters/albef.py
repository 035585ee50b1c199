"""ALBEF (Li et al., "Align before Fuse", 2021) behind the adapter interface.

The architecture is written here (no ALBEF package exists on PyPI) with the
module names of the official code, so the official checkpoints (``ALBEF.pth``,
``ALBEF_4M.pth`` and their retrieval fine-tunes, ``{'model': state_dict}``)
load by their own key names: a ViT-B/16 image encoder and a BERT-base text
encoder whose layers from ``fusion_layer`` (6) on cross-attend to the image,
with an ITM head on [CLS]. transformers' BERT output blocks are reused; the
attention blocks are written here because ALBEF's cross-attention keys and
values take the image width (``encoder_width``), not the text width.
"""
import math
import re
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn

from .base import check_prompt_chunk, weights_fingerprint
from .fusion import FusionEncoderAdapter
from .loading import load_hf_pretrained, load_torch_checkpoint

# Official checkpoint entries used only to train ALBEF: momentum encoders,
# feature queues and the masked-language-model head.
TRAINING_ONLY = re.compile(
    r'^(visual_encoder_m|text_encoder_m|vision_proj_m|text_proj_m)\.'
    r'|^(image_queue|text_queue|idx_queue|queue_ptr)$'
    r'|^text_encoder\.cls\.'
    r'|^text_encoder\.embeddings\.position_ids$')


# ----------------------------------------------------------------- vision
class PatchEmbed(nn.Module):

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, h*w, D]


class ViTAttention(nn.Module):

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, N, d]
        out = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, d]
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ViTAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ALBEF's ViT (pre-norm blocks, LayerNorm eps 1e-6, [CLS] first). The
    position embedding is resized bicubically to the input's patch grid, as
    ALBEF does when it loads a checkpoint at another resolution."""

    def __init__(self, dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_hidden: int = 3072, patch_size: int = 16,
                 num_patches: int = 256):
        super().__init__()
        self.patch_size = patch_size
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """[1, 1 + h*w, D] for a grid of h x w patches."""
        pos = self.pos_embed
        side = math.isqrt(pos.shape[1] - 1)
        if (h, w) == (side, side):
            return pos
        grid = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)  # [1, D, s, s]
        grid = F.interpolate(grid, size=(h, w), mode='bicubic',
                             align_corners=False)
        return torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, 1 + h*w, D]"""
        h, w = x.shape[2] // self.patch_size, x.shape[3] // self.patch_size
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.position_embedding(h, w)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


# ----------------------------------------------------------------- text
class TextEmbeddings(nn.Module):
    """BERT embeddings: words + absolute positions + token type 0."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings,
                                                config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size,
                                                  config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size,
                                      eps=config.layer_norm_eps)

    def forward(self, input_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # [P, T, D]
        T = inputs_embeds.shape[1]
        pos = self.position_embeddings.weight[:T]  # [T, D]
        return self.LayerNorm(inputs_embeds + pos
                              + self.token_type_embeddings.weight[0])


class QKV(nn.Module):
    """Query from the text; keys and values from ``kv_width``-wide tokens."""

    def __init__(self, hidden: int, kv_width: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(kv_width, hidden)
        self.value = nn.Linear(kv_width, hidden)

    def forward(self, hidden, context, attention_mask=None):
        """hidden [P, T, D], context [P, N, Dk] -> [P, T, D]"""
        P, T, D = hidden.shape
        H = self.num_heads

        def heads(x):  # [P, S, D] -> [P, H, S, d]
            return x.view(P, -1, H, D // H).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.query(hidden)), heads(self.key(context)),
            heads(self.value(context)), attn_mask=attention_mask)
        return out.transpose(1, 2).reshape(P, T, D)


class Attention(nn.Module):

    def __init__(self, config, kv_width: int):
        super().__init__()
        from transformers.models.bert.modeling_bert import BertSelfOutput
        self.self = QKV(config.hidden_size, kv_width,
                        config.num_attention_heads)
        self.output = BertSelfOutput(config)

    def forward(self, hidden, attention_mask=None, context=None):
        """Self-attention, or cross-attention to ``context``; a 1-tuple like
        transformers' attention blocks."""
        ctx = self.self(hidden, hidden if context is None else context,
                        attention_mask)
        return (self.output(ctx, hidden), )


class TextLayer(nn.Module):

    def __init__(self, config, cross: bool):
        super().__init__()
        from transformers.models.bert.modeling_bert import (BertIntermediate,
                                                            BertOutput)
        self.attention = Attention(config, config.hidden_size)
        if cross:
            self.crossattention = Attention(config, config.encoder_width)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def feed_forward_chunk(self, x):
        return self.output(self.intermediate(x), x)

    def forward(self, hidden, attention_mask, image_tokens=None):
        hidden = self.attention(hidden, attention_mask)[0]
        if hasattr(self, 'crossattention'):
            hidden = self.crossattention(hidden, context=image_tokens)[0]
        return self.feed_forward_chunk(hidden)


class TextEncoder(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.embeddings = TextEmbeddings(config)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            TextLayer(config, i >= config.fusion_layer)
            for i in range(config.num_hidden_layers))


class ALBEFModel(nn.Module):
    """The parts of ALBEF that score image-text pairs: encoders, contrastive
    projections (``vision_proj``, ``text_proj``, ``temp``) and ITM head.

    Args:
        vision: dict(dim, depth, num_heads, mlp_hidden, patch_size, num_patches)
        text: a transformers ``BertConfig`` with ``fusion_layer`` and
            ``encoder_width``.
        embed_dim: width of the contrastive projections.
    """

    def __init__(self, vision: Dict, text, embed_dim: int = 256):
        super().__init__()
        self.vision_cfg, self.text_cfg = dict(vision), text
        self.visual_encoder = VisionTransformer(**vision)
        self.text_encoder = TextEncoder(text)
        self.vision_proj = nn.Linear(vision['dim'], embed_dim)
        self.text_proj = nn.Linear(text.hidden_size, embed_dim)
        self.temp = nn.Parameter(torch.tensor(0.07))
        self.itm_head = nn.Linear(text.hidden_size, 2)

    @staticmethod
    def text_mask(attention_mask: torch.Tensor, dtype) -> torch.Tensor:
        """[P, T] 0/1 -> additive [P, 1, 1, T]"""
        return (1.0 - attention_mask[:, None, None, :].to(dtype)) \
            * torch.finfo(dtype).min

    def encode_text(self, input_ids, attention_mask) -> torch.Tensor:
        """ALBEF's 'text' mode: the layers before ``fusion_layer``, [P, T, D]."""
        hidden = self.text_encoder.embeddings(input_ids=input_ids)
        mask = self.text_mask(attention_mask, hidden.dtype)
        for layer in self.text_encoder.encoder.layer[:self.text_cfg.fusion_layer]:
            hidden = layer(hidden, mask)
        return hidden

    def fuse(self, text_hidden, attention_mask, image_tokens) -> torch.Tensor:
        """ALBEF's 'fusion' mode: the remaining layers, attending to
        ``image_tokens`` [P, N, Dv]; [P, T, D]."""
        mask = self.text_mask(attention_mask, text_hidden.dtype)
        hidden = text_hidden
        for layer in self.text_encoder.encoder.layer[self.text_cfg.fusion_layer:]:
            hidden = layer(hidden, mask, image_tokens)
        return hidden

    def forward(self, pixel_values, input_ids, attention_mask) -> torch.Tensor:
        """ITM logits [P, 2] of image-text pairs, read at [CLS]."""
        image = self.visual_encoder(pixel_values)
        fused = self.fuse(self.encode_text(input_ids, attention_mask),
                          attention_mask, image)
        return self.itm_head(fused[:, 0])


def _count(state: Dict, pattern: str) -> int:
    return len({m.group(1) for k in state
                if (m := re.match(pattern, k))})


def albef_config_from_state(state: Dict[str, torch.Tensor], vision_heads: int,
                            text_heads: int) -> Tuple[Dict, object, int]:
    """Architecture sizes read from the tensors of a (normalised) ALBEF state
    dict; the head counts are not stored in it and are given."""
    from transformers import BertConfig
    need = ['visual_encoder.cls_token', 'visual_encoder.pos_embed',
            'visual_encoder.patch_embed.proj.weight',
            'visual_encoder.blocks.0.mlp.fc1.weight',
            'text_encoder.embeddings.word_embeddings.weight',
            'text_encoder.embeddings.position_embeddings.weight',
            'text_encoder.embeddings.token_type_embeddings.weight',
            'text_encoder.encoder.layer.0.intermediate.dense.weight',
            'vision_proj.weight', 'itm_head.weight']
    absent = [k for k in need if k not in state]
    if absent:
        raise ValueError(
            f'Not an ALBEF checkpoint: it lacks {absent}. ALBEFAdapter loads '
            'the official ALBEF image-text checkpoints (ALBEF.pth, '
            'ALBEF_4M.pth, the retrieval fine-tunes).')
    dim = state['visual_encoder.cls_token'].shape[-1]
    vision = dict(
        dim=dim, num_heads=vision_heads,
        depth=_count(state, r'visual_encoder\.blocks\.(\d+)\.'),
        mlp_hidden=state['visual_encoder.blocks.0.mlp.fc1.weight'].shape[0],
        patch_size=state['visual_encoder.patch_embed.proj.weight'].shape[-1],
        num_patches=state['visual_encoder.pos_embed'].shape[1] - 1)
    cross = sorted(int(m.group(1)) for k in state if (m := re.match(
        r'text_encoder\.encoder\.layer\.(\d+)\.crossattention\.self\.query\.weight$', k)))
    if not cross:
        raise ValueError('Not an ALBEF image-text checkpoint: its text encoder '
                         'has no cross-attention layer.')
    words = state['text_encoder.embeddings.word_embeddings.weight']
    hidden = words.shape[1]
    text = BertConfig(
        vocab_size=words.shape[0], hidden_size=hidden,
        num_hidden_layers=_count(state, r'text_encoder\.encoder\.layer\.(\d+)\.'),
        num_attention_heads=text_heads,
        intermediate_size=state[
            'text_encoder.encoder.layer.0.intermediate.dense.weight'].shape[0],
        max_position_embeddings=state[
            'text_encoder.embeddings.position_embeddings.weight'].shape[0],
        type_vocab_size=state[
            'text_encoder.embeddings.token_type_embeddings.weight'].shape[0],
        layer_norm_eps=1e-12, pad_token_id=0, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0)
    text.fusion_layer = cross[0]
    text.encoder_width = state[
        f'text_encoder.encoder.layer.{cross[0]}.crossattention.self.key.weight'].shape[1]
    for name, width, heads in (('vision_heads', dim, vision_heads),
                               ('text_heads', hidden, text_heads)):
        if not isinstance(heads, int) or heads < 1 or width % heads:
            raise ValueError(f'{name}={heads!r} does not divide the width '
                             f'{width} of this checkpoint.')
    return vision, text, state['vision_proj.weight'].shape[0]


def normalize_albef_state(state: Dict[str, torch.Tensor]):
    """Official key names -> this module's: pretraining checkpoints keep the
    text encoder under ``text_encoder.bert.`` (a BertForMaskedLM); training-
    only entries are set aside. Returns (state, ignored keys)."""
    out, ignored = {}, []
    for key, value in state.items():
        key = key.replace('text_encoder.bert.', 'text_encoder.', 1)
        key = key.replace('text_encoder_m.bert.', 'text_encoder_m.', 1)
        if TRAINING_ONLY.search(key):
            ignored.append(key)
        else:
            out[key] = value
    return out, ignored


def load_albef(checkpoint: str, vision_heads: int = 12,
               text_heads: int = 12) -> Tuple[ALBEFModel, Dict]:
    """Build :class:`ALBEFModel` from an official checkpoint file and load
    it strictly. Returns the model and a report: ``missing`` and
    ``unexpected`` keys (both empty, or this raises) and ``ignored``
    training-only keys."""
    state, ignored = normalize_albef_state(
        load_torch_checkpoint(checkpoint, 'ALBEFAdapter'))
    vision, text, embed_dim = albef_config_from_state(
        state, vision_heads, text_heads)
    model = ALBEFModel(vision, text, embed_dim)
    result = model.load_state_dict(state, strict=False)
    report = dict(missing=list(result.missing_keys),
                  unexpected=list(result.unexpected_keys), ignored=ignored)
    if report['missing'] or report['unexpected']:
        raise ValueError(
            f'{checkpoint!r} does not match the ALBEF architecture: missing '
            f'keys {report["missing"][:8]}, unexpected keys '
            f'{report["unexpected"][:8]} ({len(report["missing"])} and '
            f'{len(report["unexpected"])} in all). ALBEFAdapter loads the '
            'image-text checkpoints (pretraining and retrieval); VQA, NLVR '
            'and grounding fine-tunes have other heads.')
    return model, report


def save_albef(model: ALBEFModel, path: str) -> None:
    """Save in the layout of ALBEF's pretraining checkpoints
    (``{'model': state_dict}``, text encoder under ``text_encoder.bert.``)."""
    state = {k.replace('text_encoder.', 'text_encoder.bert.', 1): v
             for k, v in model.state_dict().items()}
    torch.save({'model': state}, path)


@MODELS.register_module()
class ALBEFAdapter(FusionEncoderAdapter):
    """ALBEF image-text model. Attention layer ``l`` is text layer
    ``fusion_layer + l`` (layers 6-11 of BERT-base: 6 attention layers).

    Args:
        checkpoint: an official ALBEF checkpoint file (``ALBEF.pth``,
            ``ALBEF_4M.pth``, ``mscoco.pth``, ``flickr30k.pth``).
        tokenizer: directory or hub id of its tokenizer
            ('bert-base-uncased').
        vision_heads, text_heads: attention heads (12 in every official
            checkpoint; not stored in the file).
        prompt_chunk: prompts per text-encoder pass (memory bound only).
        local_files_only: passed to the tokenizer's ``from_pretrained``.
    """

    def __init__(self, checkpoint: str, tokenizer: str = 'bert-base-uncased',
                 vision_heads: int = 12, text_heads: int = 12,
                 prompt_chunk: int = 64, local_files_only: Optional[bool] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.prompt_chunk = check_prompt_chunk(prompt_chunk)  # before loading
        from transformers import AutoTokenizer
        self.checkpoint = checkpoint
        self.model, self.load_report = load_albef(checkpoint, vision_heads,
                                                  text_heads)
        self.tokenizer = load_hf_pretrained(
            AutoTokenizer, tokenizer, 'ALBEFAdapter tokenizer',
            'bert-base-uncased', local_files_only)
        if len(self.tokenizer) > self.model.text_cfg.vocab_size:
            raise ValueError(
                f'ALBEFAdapter: tokenizer {tokenizer!r} has '
                f'{len(self.tokenizer)} tokens but the checkpoint\'s text '
                f'encoder only {self.model.text_cfg.vocab_size}; use the '
                'tokenizer the checkpoint was trained with.')
        self.model.eval()
        self.model.requires_grad_(False)
        self.num_heads = text_heads
        self.max_tokens = self.model.text_cfg.max_position_embeddings
        self.patch_size = self.model.visual_encoder.patch_size
        self._init_fusion()

    def signature(self) -> Dict:
        vision, text = self.model.vision_cfg, self.model.text_cfg
        return dict(type=type(self).__name__, text_layers=self.num_layers,
                    fusion_layer=text.fusion_layer,
                    text_hidden=text.hidden_size, vocab=text.vocab_size,
                    vision_hidden=vision['dim'], vision_layers=vision['depth'],
                    patch_size=self.patch_size, weights=weights_fingerprint(
                        self.model.itm_head.weight,
                        self.model.visual_encoder.patch_embed.proj.weight))

    def encode_image(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        grid = (inputs.shape[2] // self.patch_size,
                inputs.shape[3] // self.patch_size)
        return self.model.visual_encoder(inputs), grid  # [B, 1 + h*w, Dv]
