"""The ALBEF architecture (Li et al., "Align before Fuse", 2021) with the
module names of the official code, so that the official checkpoints load
by their own key names: a ViT-B/16 image encoder and a BERT-base text
encoder whose layers from ``fusion_layer`` (6) on cross-attend to the image,
with an ITM head on [CLS]. transformers' BERT output blocks are reused; the
attention blocks are written here because ALBEF's cross-attention keys and
values take the image width (``encoder_width``), not the text width. No
ALBEF package exists on PyPI.
"""
import math
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn


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
