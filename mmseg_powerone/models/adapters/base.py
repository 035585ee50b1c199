"""The interface every VLM adapter implements.

An adapter hides one VLM's internals behind the few calls the segmentor
needs. It knows nothing of datasets or classes beyond the prompts it gets.
"""
from typing import Dict, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from ...class_names import PromptSet


class BaseVLMAdapter(BaseModule):
    """Adapter interface.

    Subclasses set ``num_layers`` (the text-to-image attention layers, indexed
    from 0), ``num_heads`` (heads of those layers) and ``patch_size`` (input
    sizes are padded to a multiple of it).
    """

    num_layers: int
    num_heads: int
    patch_size: int

    def init_weights(self):
        """Weights come from the pretrained VLM: never re-initialise them."""

    def train(self, mode: bool = True):
        """Stay in eval mode, also while tuning: no dropout, so maps and
        training are deterministic."""
        return super().train(False)

    def signature(self) -> Dict:
        """What a checkpoint of tuned parameters must match: the adapter type
        and the architecture sizes."""
        raise NotImplementedError

    def tunable_parameters(self, layers: Sequence[int],
                           embeddings: str = 'all') -> Dict[str, torch.nn.Parameter]:
        """The parameters one-shot tuning trains, by name (relative to the
        adapter): the text word embeddings ('all' the table, 'class_tokens'
        the offsets made by :meth:`add_token_offsets`) and every parameter of
        the text-to-image attention of ``layers``."""
        raise NotImplementedError

    def add_token_offsets(self, texts: Sequence[str]) -> None:
        """Create trainable offsets (zero) for the word embeddings of the
        tokens of ``texts`` only, so tuning can leave the other rows intact."""
        raise NotImplementedError

    def prompt_batch(self, prompts: PromptSet) -> Dict[str, torch.Tensor]:
        """Tokenise every prompt of ``prompts`` once; the result is passed
        back to :meth:`forward` (and moved to the input's device there). It
        holds ``name_mask`` [P, T]: the class-name tokens of each prompt."""
        raise NotImplementedError

    def encode_image(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Image tokens [B, 1 + h*w, D] and the patch grid (h, w) of
        preprocessed images [B, 3, H, W]."""
        raise NotImplementedError

    def forward(self, inputs: torch.Tensor, prompts: Dict[str, torch.Tensor],
                layers: Sequence[int], itm_reduce: str = 'max',
                map_mode: str = 'attention', head=None) -> Dict:
        """Per-layer reduced text-to-image attention and ITM scores.

        Args:
            inputs: preprocessed images, [B, 3, H, W], H and W multiples of
                ``patch_size``.
            prompts: the output of :meth:`prompt_batch`.
            layers: attention layers to capture.
            itm_reduce: 'max' over token positions or 'first' token.
            map_mode: 'attention' (steps 1-2 of DESIGN.md) or 'gradcam'
                (:func:`~mmseg_powerone.models.maps.gradcam_attention` of the
                post-softmax attention and its gradient of the ITM match
                logit; ``head`` picks one head, None averages them).
        Returns:
            dict(attn=[B, len(layers), P, h*w], itm=[B, P], grid=(h, w))
        """
        raise NotImplementedError
