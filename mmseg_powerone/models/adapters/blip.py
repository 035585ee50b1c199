"""BLIP (Hugging Face ``BlipForImageTextRetrieval``) behind the adapter
interface."""
import types
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from .base import check_prompt_chunk, weights_fingerprint
from .fusion import FusionEncoderAdapter
from .loading import load_hf_pretrained


@MODELS.register_module()
class BLIPAdapter(FusionEncoderAdapter):
    """BLIP image-text matching model: ViT image encoder and a BERT-style text
    encoder whose every layer cross-attends to the image tokens (attention
    layer ``l`` is text layer ``l``).

    Args:
        pretrained: local directory or hub id of a BlipForImageTextRetrieval
            checkpoint with its tokenizer (e.g. 'Salesforce/blip-itm-large-coco').
        prompt_chunk: prompts per text-encoder pass; bounds memory for large
            vocabularies, results do not depend on it.
        local_files_only: passed to ``from_pretrained``; None leaves the
            Hugging Face default (honours HF_HUB_OFFLINE).
        itm_reduce, map_mode, gradcam_head: the map settings (see
            :class:`BaseVLMAdapter`); the segmentor passes its own.
    """

    MODULE_PATHS = dict(FusionEncoderAdapter.MODULE_PATHS,
                        vision_encoder='vision_model')

    def __init__(self, pretrained: str, prompt_chunk: int = 64,
                 local_files_only=None, itm_reduce: str = 'max',
                 map_mode: str = 'attention', gradcam_head=None,
                 init_cfg=None):
        super().__init__(itm_reduce=itm_reduce, map_mode=map_mode,
                         gradcam_head=gradcam_head, init_cfg=init_cfg)
        self.prompt_chunk = check_prompt_chunk(prompt_chunk)  # before loading
        from transformers import AutoTokenizer, BlipForImageTextRetrieval
        example = 'Salesforce/blip-itm-large-coco'
        self.pretrained = pretrained
        self.model = load_hf_pretrained(
            BlipForImageTextRetrieval, pretrained, 'BLIPAdapter', example,
            local_files_only, attn_implementation='eager')
        self.tokenizer = load_hf_pretrained(
            AutoTokenizer, pretrained, 'BLIPAdapter tokenizer', example,
            local_files_only)
        self.model.eval()
        self.model.requires_grad_(False)
        text_cfg = self.model.config.text_config
        if not getattr(text_cfg, 'is_decoder', False):
            raise ValueError(
                f'{pretrained!r}: text encoder has no cross-attention '
                '(text_config.is_decoder is False); this is not a BLIP ITM '
                'checkpoint.')
        self.num_heads = text_cfg.num_attention_heads
        self.max_tokens = text_cfg.max_position_embeddings
        self.patch_size = self.model.config.vision_config.patch_size
        for layer in self.vision_encoder.encoder.layers:
            layer.self_attn.forward = types.MethodType(
                _sdpa_vision_attention, layer.self_attn)

    def signature(self) -> Dict:
        text, vision = self.model.config.text_config, self.model.config.vision_config
        return dict(type=type(self).__name__, text_layers=self.num_layers,
                    text_hidden=text.hidden_size, vocab=text.vocab_size,
                    vision_hidden=vision.hidden_size,
                    vision_layers=vision.num_hidden_layers,
                    patch_size=self.patch_size, weights=weights_fingerprint(
                        self.model.itm_head.weight,
                        self.model.vision_model.embeddings.patch_embedding.weight))

    def encode_image(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        out = self.vision_encoder(
            pixel_values=inputs, interpolate_pos_encoding=True)
        grid = (inputs.shape[2] // self.patch_size,
                inputs.shape[3] // self.patch_size)
        return out.last_hidden_state, grid  # [B, 1 + h*w, Dv]


def _sdpa_vision_attention(self, hidden_states: torch.Tensor, **kwargs):
    """``BlipAttention.forward`` of the vision encoder through
    ``scaled_dot_product_attention``: the same output up to float rounding,
    without materialising the [B, H, N, N] probabilities (transformers' BLIP
    is eager-only), which made batches slower per image on CPU. Returns no
    attention probabilities; nothing here reads the vision ones."""
    B, N, D = hidden_states.shape
    qkv = self.qkv(hidden_states).view(B, N, 3, self.num_heads, D // self.num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, N, d]
    out = F.scaled_dot_product_attention(
        q, k, v, dropout_p=self.dropout.p if self.training else 0.0,
        scale=self.scale)  # [B, H, N, d]
    return self.projection(out.transpose(1, 2).reshape(B, N, D)), None
