"""BLIP (Hugging Face ``BlipForImageTextRetrieval``) behind the adapter
interface."""
from typing import Dict, Tuple

import torch
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
    """

    def __init__(self, pretrained: str, prompt_chunk: int = 64,
                 local_files_only=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
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
        self._init_fusion()

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
        out = self.model.vision_model(
            pixel_values=inputs, interpolate_pos_encoding=True)
        grid = (inputs.shape[2] // self.patch_size,
                inputs.shape[3] // self.patch_size)
        return out.last_hidden_state, grid  # [B, 1 + h*w, Dv]
