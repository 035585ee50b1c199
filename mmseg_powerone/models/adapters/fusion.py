"""Shared by VLMs whose BERT-style text encoder cross-attends to the image
tokens (BLIP, ALBEF): prompts, tuning, and the text pass that builds maps."""
import contextlib
import math
from typing import Dict, List, Sequence, Tuple

import torch

from ...class_names import PromptSet
from ..utils.maps import gradcam_attention, reduce_attention, reduce_itm
from .base import BaseVLMAdapter


def _per_prompt(x: torch.Tensor, P: int, T: int) -> torch.Tensor:
    """[H, P*T, N] -> [P, H, T, N] (a view)."""
    return x.view(x.shape[0], P, T, x.shape[-1]).transpose(0, 1)


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

    Subclasses build ``model``, set ``tokenizer``, ``prompt_chunk``,
    ``num_heads``, ``patch_size`` and ``max_tokens``, call
    :meth:`_init_fusion`, and
    provide (the defaults read ``model.text_encoder`` and ``model.itm_head``)
    ``text_layers`` (each with
    ``attention(hidden, attention_mask=additive)[0]``,
    ``feed_forward_chunk`` and, on fusion layers, ``crossattention`` with
    ``self.query/key/value`` and ``output(context, residual)``),
    ``text_embeddings`` (``word_embeddings``; callable with ``input_ids=``
    or ``inputs_embeds=``), ``itm_head`` (read at the first token) and
    :meth:`encode_image`.
    """

    def _init_fusion(self):
        self.cross_layer_ids = [i for i, layer in enumerate(self.text_layers)
                                if hasattr(layer, 'crossattention')]
        if not self.cross_layer_ids:
            raise ValueError(f'{type(self).__name__}: the text encoder has no '
                             'cross-attention layer.')
        self.num_layers = len(self.cross_layer_ids)
        cross = self.text_layers[self.cross_layer_ids[0]].crossattention.self
        self.head_dim = cross.query.out_features // self.num_heads

    # BLIP's and ALBEF's modules share these paths; override if not.
    @property
    def text_layers(self) -> torch.nn.ModuleList:
        return self.model.text_encoder.encoder.layer

    @property
    def text_embeddings(self) -> torch.nn.Module:
        return self.model.text_encoder.embeddings

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        return self.text_embeddings.word_embeddings

    @property
    def itm_head(self) -> torch.nn.Linear:
        return self.model.itm_head

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
        """Keys and values of every cross-attention layer for one image, laid
        out for batched matrix products with all prompts' queries at once.

        Args:
            image_tokens: [1, N, Dv]
        Returns:
            per attention layer (K^T, V): [H, d, N] and [H, N, d]
        """
        kv = []
        n = image_tokens.shape[1]
        for i in self.cross_layer_ids:
            att = self.text_layers[i].crossattention.self
            k = att.key(image_tokens[0]).view(n, self.num_heads, self.head_dim)
            v = att.value(image_tokens[0]).view(n, self.num_heads, self.head_dim)
            kv.append((k.permute(1, 2, 0).contiguous(),
                       v.transpose(0, 1).contiguous()))
        return kv

    def text_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     kv, layers: Sequence[int], itm_reduce: str,
                     map_mode: str = 'attention', name_mask=None, head=None):
        """One text-encoder pass of P prompts against one image.

        Args:
            input_ids, attention_mask: [P, T]
            kv: :meth:`cross_kv` of the image.
            map_mode: 'attention' (pre-softmax scores reduced as produced)
                or 'gradcam' (post-softmax attention times its positive
                gradient of the ITM match logit; one backward pass for all
                P prompts, ``name_mask`` [P, T] selects the rows).
        Returns:
            attn [len(layers), P, h*w] and itm [P]
        """
        P, T = input_ids.shape
        gradcam = map_mode == 'gradcam'
        with torch.enable_grad() if gradcam else contextlib.nullcontext():
            hidden = self.embed_text(input_ids)  # [P, T, D]
            if gradcam and not hidden.requires_grad:
                # a leaf upstream of every layer, so that the gradient of the
                # logit reaches each layer's attention through all later ones
                hidden = hidden.detach().requires_grad_(True)
            # additive mask over keys for the text self-attention: [P, 1, 1, T]
            self_mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) \
                * torch.finfo(hidden.dtype).min
            wanted = {self.cross_layer_ids[l]: i for i, l in enumerate(layers)}
            captured = [None] * len(layers)
            cross_index = {l: j for j, l in enumerate(self.cross_layer_ids)}
            for i, layer in enumerate(self.text_layers):
                hidden = layer.attention(hidden, attention_mask=self_mask)[0]
                if i in cross_index:
                    cross = layer.crossattention
                    # all prompts' queries against the image keys in one
                    # product per head: [H, P*T, d] (a broadcast
                    # [P, H, T, d] x [1, H, d, N] matmul would copy the keys
                    # P times)
                    q = cross.self.query(hidden).view(
                        P * T, self.num_heads, self.head_dim).transpose(0, 1)
                    k_t, v = kv[cross_index[i]]  # [H, d, N], [H, N, d]
                    scores = torch.matmul(q, k_t) / math.sqrt(self.head_dim)  # [H, P*T, N]
                    probs = scores.softmax(dim=-1)
                    if i in wanted:  # -> [P, N - 1], or kept for gradcam
                        captured[wanted[i]] = probs if gradcam else \
                            reduce_attention(_per_prompt(scores, P, T),
                                             attention_mask)
                    context = torch.matmul(probs, v)  # [H, P*T, d]
                    context = context.transpose(0, 1).reshape(P, T, -1)  # [P, T, D]
                    hidden = cross.output(context, hidden)
                hidden = layer.feed_forward_chunk(hidden)
            logits = self.itm_head(hidden)  # [P, T, 2]
            match = logits.softmax(dim=-1)[..., 1]  # [P, T]
            itm = reduce_itm(match, attention_mask, itm_reduce)
            if gradcam:  # the ITM match logit is read at the first token
                grads = torch.autograd.grad(logits[:, 0, 1].sum(), captured)
                captured = [gradcam_attention(_per_prompt(p.detach(), P, T),
                                              _per_prompt(g, P, T),
                                              name_mask, head)
                            for p, g in zip(captured, grads)]
                itm = itm.detach()
        return torch.stack(captured), itm

    def forward(self, inputs, prompts, layers, itm_reduce='max',
                map_mode='attention', head=None):
        layers = list(layers)
        image_tokens, grid = self.encode_image(inputs)  # [B, N, Dv]
        ids = prompts['input_ids'].to(inputs.device)
        mask = prompts['attention_mask'].to(inputs.device)
        names = prompts['name_mask'].to(inputs.device)
        attn, itm = [], []
        for b in range(inputs.shape[0]):
            kv = self.cross_kv(image_tokens[b:b + 1])
            parts = []
            for s in range(0, ids.shape[0], self.prompt_chunk):
                m = mask[s:s + self.prompt_chunk]
                # Trim padding beyond this chunk's longest prompt, except for
                # itm_reduce='max', whose score reads the padding positions
                # of the whole set's length (real tokens never see padding).
                t = ids.shape[1] if itm_reduce == 'max' \
                    else int(m.sum(1).max())
                parts.append(self.text_forward(
                    ids[s:s + self.prompt_chunk, :t], m[:, :t], kv, layers,
                    itm_reduce, map_mode,
                    names[s:s + self.prompt_chunk, :t], head))
            attn.append(torch.cat([p[0] for p in parts], dim=1))  # [L, P, N]
            itm.append(torch.cat([p[1] for p in parts], dim=0))  # [P]
        return dict(attn=torch.stack(attn), itm=torch.stack(itm), grid=grid)
