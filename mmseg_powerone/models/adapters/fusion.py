"""Shared by VLMs whose BERT-style text encoder cross-attends to the image
tokens (BLIP, ALBEF): prompts, tuning, and the text pass that builds maps."""
import contextlib
import functools
import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from ...class_names import PromptSet
from ..utils.maps import gradcam_attention, reduce_attention, reduce_itm
from .base import BaseVLMAdapter


def _per_prompt(x: torch.Tensor, B: int, P: int, T: int) -> torch.Tensor:
    """[B, H, P*T, N] -> [B, P, H, T, N] (a view)."""
    return x.view(B, x.shape[1], P, T, x.shape[-1]).transpose(1, 2)


def find_name_tokens(tokenizer, prompts: PromptSet,
                     input_ids: torch.Tensor) -> torch.Tensor:
    """[P, T], 1 on the tokens of each prompt's class name (the rows that
    "gradcam" mode averages), found as a sub-sequence of the prompt."""
    mask = torch.zeros_like(input_ids)
    for p, (text, name) in enumerate(zip(prompts.texts, prompts.names)):
        name_ids = tokenizer(name, add_special_tokens=False)['input_ids']
        row, n = input_ids[p].tolist(), len(name_ids)
        start = next((i for i in range(1, len(row) - n + 1)
                      if row[i:i + n] == name_ids), None)
        if start is None:
            raise ValueError(
                f'Cannot find the tokens of class name {name!r} in the '
                f'prompt {text!r}: the template must keep the name a '
                'separate word (e.g. "Image of {}.").')
        mask[p, start:start + n] = 1
    return mask


class FusionEncoderAdapter(BaseVLMAdapter):
    """Base of adapters for a ViT image encoder plus a BERT-style text
    encoder in which some layers cross-attend to the image tokens, with an
    ITM head on the text tokens.

    The text encoder's forward is run here layer by layer, using the
    model's own modules, so that (1) the image keys/values of every
    cross-attention are computed once per image and shared by all prompts,
    and (2) the pre-softmax cross-attention scores of the requested layers
    are reduced as they are produced (memory [layers, P, h*w]).

    Attention layer ``l`` is the ``l``-th text layer that has a
    cross-attention (BLIP: every layer; ALBEF: layers 6-11 of BERT-base).

    Subclasses load ``model`` and set ``tokenizer``, ``prompt_chunk``,
    ``num_heads``, ``patch_size`` and ``max_tokens`` in ``__init__``; the
    attention layers are derived from the model when first needed. Their
    ``MODULE_PATHS`` name ``text_layers`` (each with
    ``attention(hidden, attention_mask=additive)[0]``,
    ``feed_forward_chunk`` (through ``intermediate`` and ``output``) and,
    on fusion layers, ``crossattention`` with ``self.query/key/value`` and
    ``output(context, residual)``), ``text_embeddings``
    (``word_embeddings``; callable with ``input_ids=`` or
    ``inputs_embeds=``), ``itm_head`` (read at the first token) and
    ``vision_encoder`` (the module :meth:`encode_image` runs).
    """

    # BLIP's and ALBEF's text side (a BERT-style ``text_encoder``) and ITM
    # head; a subclass adds its ``vision_encoder``
    MODULE_PATHS = dict(text_layers='text_encoder.encoder.layer',
                        text_embeddings='text_encoder.embeddings',
                        itm_head='itm_head')

    @functools.cached_property
    def cross_layer_ids(self) -> List[int]:
        """Indices of the text layers that cross-attend to the image."""
        ids = [i for i, layer in enumerate(self.text_layers)
               if hasattr(layer, 'crossattention')]
        if not ids:
            raise ValueError(f'{type(self).__name__}: the text encoder has no '
                             'cross-attention layer.')
        return ids

    @property
    def num_layers(self) -> int:
        return len(self.cross_layer_ids)

    @functools.cached_property
    def head_dim(self) -> int:
        cross = self.text_layers[self.cross_layer_ids[0]].crossattention.self
        return cross.query.out_features // self.num_heads

    @property
    def text_layers(self) -> torch.nn.ModuleList:
        return self.part('text_layers')

    @property
    def text_embeddings(self) -> torch.nn.Module:
        return self.part('text_embeddings')

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        return self.text_embeddings.word_embeddings

    @property
    def itm_head(self) -> torch.nn.Linear:
        return self.part('itm_head')

    @property
    def vision_encoder(self) -> torch.nn.Module:
        """The module :meth:`encode_image` runs (compiled as a whole)."""
        return self.part('vision_encoder')

    def compile_targets(self) -> List[torch.nn.Module]:
        """The image encoder, and per text layer what :meth:`text_forward`
        calls as a whole: the self-attention, the feed-forward pieces and
        the cross-attention's output projection (its scores are computed
        here, around the compiled parts)."""
        targets = [self.vision_encoder]
        for layer in self.text_layers:
            targets += [layer.attention, layer.intermediate, layer.output]
            if hasattr(layer, 'crossattention'):
                targets.append(layer.crossattention.output)
        return targets

    # ----------------------------------------------------------- tuning
    def attention_module(self, layer: int) -> torch.nn.Module:
        return self.text_layers[self.cross_layer_ids[layer]].crossattention

    def embed_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Text embeddings [P, T, D], with the tuned token offsets if any."""
        if self.token_offsets is None:
            return self.text_embeddings(input_ids=input_ids)
        return self.text_embeddings(inputs_embeds=self.embed_words(input_ids))

    # ----------------------------------------------------------- prompts
    def prompt_batch(self, prompts: PromptSet) -> Dict[str, torch.Tensor]:
        tok = self.tokenizer(list(prompts.texts), padding=True,
                             return_tensors='pt')
        lengths = tok['attention_mask'].sum(1)
        too_long = [(t, int(n)) for t, n in zip(prompts.texts, lengths)
                    if n > self.max_tokens]
        if too_long:
            text, n = too_long[0]
            raise ValueError(
                f'Prompt {text!r} is {n} tokens long, more than the text '
                f'encoder takes ({self.max_tokens}). Shorten that class name '
                'or template.')
        return dict(input_ids=tok['input_ids'],
                    attention_mask=tok['attention_mask'],
                    name_mask=find_name_tokens(self.tokenizer, prompts,
                                               tok['input_ids']))

    # ----------------------------------------------------------- maps
    def cross_kv(self, image_tokens: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Keys and values of every cross-attention layer, computed once per
        image and shared by all prompts.

        Args:
            image_tokens: [B, N, Dv]
        Returns:
            per attention layer (K, V): [B, H, N, d] each
        """
        B, n = image_tokens.shape[:2]
        kv = []
        for i in self.cross_layer_ids:
            att = self.text_layers[i].crossattention.self
            k = att.key(image_tokens).view(B, n, self.num_heads, self.head_dim)
            v = att.value(image_tokens).view(B, n, self.num_heads, self.head_dim)
            kv.append((k.transpose(1, 2), v.transpose(1, 2)))  # [B, H, N, d]
        return kv

    def text_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     kv, layers: Sequence[int], itm_reduce: str,
                     map_mode: str = 'attention', name_mask=None, head=None):
        """One text-encoder pass of P prompts against B images at once.

        The text layers before the first cross-attention see no image, so
        they run once for the P prompts; from there the prompts of all B
        images form one batch of B*P sequences (one matrix product per
        linear layer for the whole batch). A cross-attention whose scores
        are not read runs as ``scaled_dot_product_attention`` (no [.., N]
        probabilities in memory); a read layer computes the pre-softmax
        scores, reduces them as they are produced and softmaxes them itself.

        Args:
            input_ids, attention_mask: [P, T]
            kv: :meth:`cross_kv` of the B images.
            map_mode: 'attention' (pre-softmax scores reduced as produced)
                or 'gradcam' (post-softmax attention times its positive
                gradient of the ITM match logit; one backward pass for all
                prompts and images, ``name_mask`` [P, T] selects the rows).
        Returns:
            attn [B, len(layers), P, N - 1] and itm [B, P]
        """
        P, T = input_ids.shape
        B = kv[0][0].shape[0]
        gradcam = map_mode == 'gradcam'
        read = {self.cross_layer_ids[l]: j for j, l in enumerate(layers)}
        first_read = min(read)
        cross_index = {l: j for j, l in enumerate(self.cross_layer_ids)}
        captured = [None] * len(layers)
        per_image = False  # hidden holds [P, ...] until the first image
        hidden = self.embed_text(input_ids)  # [P, T, D]
        # additive mask over keys for the text self-attention: [P, 1, 1, T]
        self_mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) \
            * torch.finfo(hidden.dtype).min
        for i, layer in enumerate(self.text_layers):
            if gradcam and i == first_read:
                # gradients are needed from the first read layer on only: a
                # leaf here makes every later attention depend on it
                hidden = hidden.detach().requires_grad_(True)
            with torch.enable_grad() if gradcam and i >= first_read \
                    else contextlib.nullcontext():
                hidden = layer.attention(hidden, attention_mask=self_mask)[0]
                if i in cross_index:
                    if not per_image and B > 1:  # the first image-dependent step
                        hidden = hidden.repeat(B, 1, 1)  # [B*P, T, D]
                        self_mask = self_mask.repeat(B, 1, 1, 1)  # [B*P, 1, 1, T]
                    per_image = True
                    hidden, capture = self._cross_attention(
                        layer.crossattention, hidden, kv[cross_index[i]],
                        i in read, gradcam, attention_mask)
                    if i in read:
                        captured[read[i]] = capture
                hidden = layer.feed_forward_chunk(hidden)
        with torch.enable_grad() if gradcam else contextlib.nullcontext():
            if itm_reduce == 'first':  # only the first token's score is read
                hidden = hidden[:, :1]
            logits = self.itm_head(hidden)  # [B*P, T, 2]
            match = logits.softmax(dim=-1)[..., 1]  # [B*P, T]
            itm = reduce_itm(match, attention_mask.repeat(B, 1)[:, :hidden.shape[1]],
                             itm_reduce).view(B, P)
            if gradcam:  # the ITM match logit is read at the first token
                grads = torch.autograd.grad(logits[:, 0, 1].sum(), captured)
                captured = [gradcam_attention(_per_prompt(p.detach(), B, P, T),
                                              _per_prompt(g, B, P, T),
                                              name_mask, head)
                            for p, g in zip(captured, grads)]
                itm = itm.detach()
        return torch.stack(captured, dim=1), itm  # [B, L, P, N - 1], [B, P]

    def _cross_attention(self, cross, hidden, kv, read, gradcam,
                         attention_mask):
        """One cross-attention of the B*P text sequences ``hidden``
        [B*P, T, D] to their images (``kv``: [B, H, N, d] each). Returns the
        new hidden states and, for a ``read`` layer, its reduced scores
        [B, P, N - 1] (GradCAM: its probabilities [B, H, P*T, N]); None
        otherwise."""
        k, v = kv  # [B, H, N, d] each
        B = k.shape[0]
        P, T = hidden.shape[0] // B, hidden.shape[1]
        scale = 1.0 / math.sqrt(self.head_dim)
        # all prompts of an image against its keys in one product per head
        q = (cross.self.query(hidden) * scale).view(
            B, P * T, self.num_heads, self.head_dim).transpose(1, 2)  # [B, H, P*T, d]
        capture = None
        if not read:
            context = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2))  # [B, H, P*T, N]
            probs = scores.softmax(dim=-1)
            capture = probs if gradcam else reduce_attention(
                _per_prompt(scores, B, P, T), attention_mask)  # [B, P, N - 1]
            context = torch.matmul(probs, v)  # [B, H, P*T, d]
        context = context.transpose(1, 2).reshape(B * P, T, -1)  # [B*P, T, D]
        return cross.output(context, hidden), capture

    def forward(self, inputs, prompts, layers):
        layers = list(layers)
        image_tokens, grid = self.encode_image(inputs)  # [B, N, Dv]
        kv = self.cross_kv(image_tokens)

        def run(ids, mask, names):
            return self.text_forward(ids, mask, kv, layers, self.itm_reduce,
                                     self.map_mode, names, self.gradcam_head)

        # Each pass is cut to its longest prompt, except for
        # itm_reduce='max', whose score reads the padding positions of the
        # whole set's length (real tokens never see padding).
        parts = self.prompt_chunks(prompts, inputs.device, run,
                                   trim=self.itm_reduce != 'max')
        return dict(attn=torch.cat([p[0] for p in parts], dim=2),  # [B, L, P, N - 1]
                    itm=torch.cat([p[1] for p in parts], dim=1),  # [B, P]
                    grid=grid)
