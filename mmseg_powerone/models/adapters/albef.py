"""ALBEF (Li et al., "Align before Fuse", 2021) behind the adapter
interface; the model and its checkpoint converter are in
``models/vlms/albef``."""
from typing import Dict, Optional, Tuple

import torch
from mmseg.registry import MODELS

from ..vlms.albef import load_albef
from .base import check_prompt_chunk, weights_fingerprint
from .fusion import FusionEncoderAdapter
from .loading import load_hf_pretrained


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
        itm_reduce, map_mode, gradcam_head: the map settings (see
            :class:`BaseVLMAdapter`); the segmentor passes its own.
    """

    MODULE_PATHS = dict(FusionEncoderAdapter.MODULE_PATHS,
                        vision_encoder='visual_encoder')

    def __init__(self, checkpoint: str, tokenizer: str = 'bert-base-uncased',
                 vision_heads: int = 12, text_heads: int = 12,
                 prompt_chunk: int = 64, local_files_only: Optional[bool] = None,
                 itm_reduce: str = 'max', map_mode: str = 'attention',
                 gradcam_head=None, init_cfg=None):
        super().__init__(itm_reduce=itm_reduce, map_mode=map_mode,
                         gradcam_head=gradcam_head, init_cfg=init_cfg)
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
        return self.vision_encoder(inputs), grid  # [B, 1 + h*w, Dv]
