"""LLaVA (Hugging Face ``LlavaForConditionalGeneration``, llava-hf
directories) behind the adapter interface.

LLaVA has no cross-attention: the image enters the language model as
tokens, so the text-to-image attention of layer ``l`` is that decoder
layer's self-attention from the class-name tokens of the question to the
image tokens, and the matching score is the answer to a yes/no question
("Is there a cat in the image? Answer yes or no.").
"""
import contextlib
import inspect
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmseg.registry import MODELS
from transformers import DynamicCache

from ...class_names import PromptSet
from ..utils.maps import gradcam_attention, reduce_attention
from .base import BaseVLMAdapter, check_prompt_chunk, weights_fingerprint
from .loading import load_hf_pretrained

IMAGE_PLACEHOLDER = '<image>'


def cache_kwarg(language_model, cache) -> Dict:
    """The KV-cache keyword argument of a language model's forward:
    transformers 5.x is renaming ``past_key_values`` to ``cache``."""
    params = inspect.signature(language_model.forward).parameters
    return {'cache' if 'cache' in params else 'past_key_values': cache}


def output_cache(out):
    """The KV cache a forward with ``use_cache=True`` returned, under
    either name."""
    cache = out.get('cache')
    return out.past_key_values if cache is None else cache


@MODELS.register_module()
class LLaVAAdapter(BaseVLMAdapter):
    """LLaVA: CLIP ViT + projector + decoder-only language model.

    Each prompt (the segmentor's text for one class, e.g. 'cat') is put into
    ``question`` and the chat ``template``; the language model reads
    [prefix, image tokens] once per image and keeps their keys and values
    (a KV cache), then reads the questions of all prompts of a chunk in one
    batch against that cache, so each prompt costs its own few tokens, not
    the hundreds of image tokens. In 'attention' mode the requested layers'
    pre-softmax scores from the class-name tokens to the image tokens are
    recomputed from that layer's input (queries of the question tokens,
    rotary positions applied) and the cached image keys, so the model itself
    keeps its efficient attention everywhere. 'gradcam' mode needs the
    post-softmax attention in the autograd graph and switches the model to
    eager attention for the question pass.

    The matching score is P(yes) of the first answer token, normalised over
    the two answers (``answers``); GradCAM differentiates the yes-minus-no
    logit. ``itm_reduce`` does not apply (there is one answer position).

    Args:
        pretrained: llava-hf directory or hub id (e.g.
            'llava-hf/llava-1.5-7b-hf'); tokenizer in the same directory.
        question: the yes/no question, ``{}`` is the prompt text.
        template: the chat format around it; must contain '<image>' before
            '{}' (llava-1.5: 'USER: <image>\\n{} ASSISTANT:').
        answers: the positive and negative answer words.
        torch_dtype: 'auto' (bfloat16 if CUDA is available, else float32),
            or a torch dtype name.
        prompt_chunk: prompts per language-model pass (memory bound only).
        itm_reduce, map_mode, gradcam_head: the map settings (see
            :class:`BaseVLMAdapter`; ``itm_reduce`` has no effect here).
    """

    MODULE_PATHS = dict(vision_encoder='model.vision_tower',
                        projector='model.multi_modal_projector',
                        language_model='model.language_model',
                        decoder_layers='model.language_model.layers')

    def __init__(self, pretrained: str,
                 question: str = 'Is there a {} in the image? Answer yes or no.',
                 template: str = 'USER: <image>\n{} ASSISTANT:',
                 answers: Sequence[str] = ('Yes', 'No'),
                 torch_dtype: str = 'auto', prompt_chunk: int = 16,
                 local_files_only: Optional[bool] = None,
                 itm_reduce: str = 'max', map_mode: str = 'attention',
                 gradcam_head=None, init_cfg=None):
        super().__init__(itm_reduce=itm_reduce, map_mode=map_mode,
                         gradcam_head=gradcam_head, init_cfg=init_cfg)
        from transformers import AutoTokenizer, LlavaForConditionalGeneration
        self.prompt_chunk = check_prompt_chunk(prompt_chunk)  # before loading
        if question.count('{}') != 1:
            raise ValueError(f'question={question!r} must contain one "{{}}" '
                             'for the prompt text.')
        if template.count('{}') != 1 or IMAGE_PLACEHOLDER not in template \
                or template.index(IMAGE_PLACEHOLDER) > template.index('{}'):
            raise ValueError(
                f'template={template!r} must contain {IMAGE_PLACEHOLDER!r} '
                'followed by one "{}" for the question, e.g. '
                "'USER: <image>\\n{} ASSISTANT:'.")
        if torch_dtype == 'auto':
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        else:
            dtype = getattr(torch, str(torch_dtype).replace('torch.', ''))
        example = 'llava-hf/llava-1.5-7b-hf'
        self.pretrained = pretrained
        self.model = load_hf_pretrained(
            LlavaForConditionalGeneration, pretrained, 'LLaVAAdapter', example,
            local_files_only, dtype=dtype)
        self.tokenizer = load_hf_pretrained(
            AutoTokenizer, pretrained, 'LLaVAAdapter tokenizer', example,
            local_files_only)
        if not getattr(self.tokenizer, 'is_fast', False):
            raise ValueError('LLaVAAdapter needs a fast tokenizer (character '
                             'offsets locate the class name); save the '
                             "model's tokenizer.json with it.")
        self.model.eval()
        self.model.requires_grad_(False)
        self.question, self.template = question, template
        text_cfg = self.model.config.text_config
        vision_cfg = self.model.config.vision_config
        self.num_layers = text_cfg.num_hidden_layers
        self.num_heads = text_cfg.num_attention_heads
        self.patch_size = vision_cfg.patch_size
        self.answer_ids = [self._single_token(a) for a in answers]
        attn = self.decoder_layers[0].self_attn
        self._rope = getattr(sys.modules[type(attn).__module__],
                             'apply_rotary_pos_emb', None)
        if self._rope is None:
            raise ValueError(f'{type(attn).__name__}: no apply_rotary_pos_emb '
                             'in its module; LLaVAAdapter supports rotary '
                             'language models (Llama, Mistral, Vicuna, Qwen2).')

    def _single_token(self, word: str) -> int:
        ids = self.tokenizer(word, add_special_tokens=False)['input_ids']
        if not ids:
            raise ValueError(f'Answer {word!r} has no tokens.')
        return ids[0]  # the first token decides the answer

    @property
    def language_model(self):
        return self.part('language_model')

    @property
    def decoder_layers(self):
        return self.part('decoder_layers')

    @property
    def word_embeddings(self):
        return self.language_model.embed_tokens

    def signature(self) -> Dict:
        text = self.model.config.text_config
        vision = self.model.config.vision_config
        return dict(type=type(self).__name__, text_layers=self.num_layers,
                    text_hidden=text.hidden_size, vocab=text.vocab_size,
                    vision_hidden=vision.hidden_size,
                    vision_layers=vision.num_hidden_layers,
                    patch_size=self.patch_size, question=self.question,
                    template=self.template, weights=weights_fingerprint(
                        self.part('projector').linear_1.weight,
                        self.part('vision_encoder').get_input_embeddings().weight))

    def compile_targets(self) -> List[torch.nn.Module]:
        """The vision tower and the projector (fixed shapes per image size).
        The decoder layers are not compiled: the maps are read from them by
        hooks registered per pass, which a compiled module would retrace."""
        return [self.part('vision_encoder'), self.part('projector')]

    def attention_module(self, layer: int) -> torch.nn.Module:
        # the decoder self-attention is what reads the image tokens
        return self.decoder_layers[layer].self_attn

    # ----------------------------------------------------------- prompts
    def prompt_batch(self, prompts: PromptSet) -> Dict[str, torch.Tensor]:
        """Token ids of the text before the image (shared) and of each
        prompt's text after it, right-padded, with the class-name rows."""
        before, after = self.template.split(IMAGE_PLACEHOLDER, 1)
        head, tail = after.split('{}', 1)
        q_head, q_tail = self.question.split('{}', 1)
        prefix = self.tokenizer(before)['input_ids']  # with BOS
        rows, spans = [], []
        for text, name in zip(prompts.texts, prompts.names):
            at = text.find(name)
            if at < 0:
                raise ValueError(f'Class name {name!r} does not occur in its '
                                 f'prompt {text!r}.')
            suffix = head + q_head + text + q_tail + tail
            start = len(head) + len(q_head) + at
            rows.append(self.tokenizer(suffix, add_special_tokens=False,
                                       return_offsets_mapping=True))
            spans.append((start, start + len(name), name, suffix))
        T = max(len(r['input_ids']) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), T), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        names = torch.zeros((len(rows), T), dtype=torch.long)
        for p, (r, (s, e, name, suffix)) in enumerate(zip(rows, spans)):
            n = len(r['input_ids'])
            ids[p, :n] = torch.tensor(r['input_ids'])
            mask[p, :n] = 1
            for t, (a, b) in enumerate(r['offset_mapping']):
                names[p, t] = int(a < e and b > s)
            if not names[p].any():
                raise ValueError(f'No token of {name!r} found in the prompt '
                                 f'{suffix!r}.')
        return dict(prefix_ids=torch.tensor(prefix), input_ids=ids,
                    attention_mask=mask, name_mask=names)

    # ----------------------------------------------------------- maps
    def encode_image(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Projected image tokens [B, h*w, D] (the language model's width)."""
        cfg = self.model.config
        out = self.model.model.get_image_features(
            pixel_values=inputs.to(self.model.dtype),
            vision_feature_layer=cfg.vision_feature_layer,
            vision_feature_select_strategy=cfg.vision_feature_select_strategy,
            interpolate_pos_encoding=True)
        feats = torch.stack(list(out.pooler_output))  # [B, h*w, D]
        grid = (inputs.shape[2] // self.patch_size,
                inputs.shape[3] // self.patch_size)
        if feats.shape[1] != grid[0] * grid[1]:
            raise ValueError(
                f'LLaVA returned {feats.shape[1]} image tokens for a '
                f'{grid[0]}x{grid[1]} patch grid; only single-resolution '
                "LLaVA with vision_feature_select_strategy='default' is "
                'supported.')
        return feats, grid

    def _score_hook(self, store: List, image_keys: torch.Tensor):
        """Pre-hook of one decoder self-attention in the question pass:
        pre-softmax scores [P, H, T, N] from the question tokens (its input)
        to the image tokens, whose keys ``image_keys`` [1, Hkv, N, d] (rotary
        positions applied) come from the prefix cache."""
        def hook(module, args, kwargs):
            hidden = kwargs['hidden_states'] if 'hidden_states' in kwargs else args[0]
            cos, sin = kwargs['position_embeddings']  # question positions
            P, d = hidden.shape[0], module.head_dim
            q = module.q_proj(hidden)  # [P, T, H*d]
            q = q.view(P, q.shape[1], -1, d).transpose(1, 2)  # [P, H, T, d]
            q, _ = self._rope(q, q, cos, sin)
            k = image_keys.repeat_interleave(
                q.shape[1] // image_keys.shape[1], dim=1)  # [1, H, N, d]
            store.append(torch.matmul(q.float(), k.float().transpose(-1, -2))
                         * module.scaling)
        return hook

    def _weights_hook(self, store: List):
        def hook(module, args, output):
            store.append(output[1])  # post-softmax [P, H, T, S0 + N + T] (eager)
        return hook

    def _cache_arg(self, cache) -> Dict:
        return cache_kwarg(self.language_model, cache)

    def prefix_cache(self, image: torch.Tensor, prefix_ids: torch.Tensor):
        """KV cache of the shared [prefix, image] tokens of one image: image
        [N, D], prefix_ids [S0]. Image tokens never attend to the questions,
        so GradCAM (a gradient with respect to the questions' attention)
        needs no graph through this pass; tuning (grad enabled by the
        caller) keeps one."""
        shared = torch.cat([self.embed_words(prefix_ids[None]),
                            image[None].to(self.model.dtype)], dim=1)  # [1, S0 + N, D]
        out = self.language_model(inputs_embeds=shared, use_cache=True)
        return output_cache(out)

    @contextlib.contextmanager
    def _eager(self):
        old = self.model.config._attn_implementation
        self.model.set_attn_implementation('eager')
        try:
            yield
        finally:
            self.model.set_attn_implementation(old)

    def text_forward(self, cache, prefix_len: int,
                     input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     layers: Sequence[int], map_mode: str = 'attention',
                     name_mask=None, head=None):
        """One language-model pass of the questions of P prompts against
        the :meth:`prefix_cache` of one image.

        Args:
            cache: the image's prefix cache ([1, Hkv, S0 + N, d] per layer).
            prefix_len: S0, the tokens before the image; input_ids,
                attention_mask, name_mask: [P, T] tokens after it.
        Returns:
            attn [len(layers), P, N] and the yes probability [P]
        """
        P, T = input_ids.shape
        S0, q0 = prefix_len, cache.get_seq_length()  # q0 = S0 + N
        gradcam = map_mode == 'gradcam'
        # the cache broadcast to the P prompts; the pass appends to this copy
        past = DynamicCache(
            ddp_cache_data=[(layer.keys.expand(P, -1, -1, -1),
                             layer.values.expand(P, -1, -1, -1))
                            for layer in cache.layers],
            config=self.model.config)
        store, handles = [], []
        for l in layers:
            att = self.decoder_layers[l].self_attn
            handles.append(
                att.register_forward_hook(self._weights_hook(store)) if gradcam
                else att.register_forward_pre_hook(
                    self._score_hook(store, cache.layers[l].keys[:1, :, S0:q0]),
                    with_kwargs=True))
        try:
            with (self._eager() if gradcam else contextlib.nullcontext()), \
                    (torch.enable_grad() if gradcam else contextlib.nullcontext()):
                embed = self.embed_words(input_ids)  # [P, T, D]
                if gradcam and not embed.requires_grad:
                    embed = embed.detach().requires_grad_(True)
                mask = torch.cat([attention_mask.new_ones(P, q0),
                                  attention_mask], 1)  # [P, S0 + N + T]
                hidden = self.language_model(
                    inputs_embeds=embed, attention_mask=mask,
                    use_cache=True, **self._cache_arg(past)).last_hidden_state  # [P, T, D]
                last = attention_mask.sum(1) - 1  # [P]
                answer = self.model.lm_head(
                    hidden[torch.arange(P), last])[:, self.answer_ids].float()  # [P, 2]
                yes = answer.softmax(dim=-1)[:, 0]
                if gradcam:
                    grads = torch.autograd.grad(
                        (answer[:, 0] - answer[:, 1]).sum(), store)
                    store = [gradcam_attention(
                        w.detach()[:, :, :, S0:q0].float(),
                        g[:, :, :, S0:q0].float(), name_mask, head,
                        drop_first=False) for w, g in zip(store, grads)]
                    yes = yes.detach()
                else:
                    store = [reduce_attention(s, name_mask, drop_first=False)
                             for s in store]
        finally:
            for h in handles:
                h.remove()
        return torch.stack(store), yes

    def forward(self, inputs, prompts, layers):
        layers = list(layers)
        image_tokens, grid = self.encode_image(inputs)  # [B, N, D]
        # on the device once, not once per image (the loop below)
        prompts = {k: v.to(inputs.device) for k, v in prompts.items()}
        prefix = prompts['prefix_ids']
        attn, itm = [], []
        for b in range(inputs.shape[0]):
            cache = self.prefix_cache(image_tokens[b], prefix)

            def run(ids, mask, names):
                return self.text_forward(cache, prefix.shape[0], ids, mask,
                                         layers, self.map_mode, names,
                                         self.gradcam_head)

            parts = self.prompt_chunks(prompts, inputs.device, run)
            attn.append(torch.cat([p[0] for p in parts], dim=1).float())  # [L, P, N]
            itm.append(torch.cat([p[1] for p in parts], dim=0).float())  # [P]
        return dict(attn=torch.stack(attn), itm=torch.stack(itm), grid=grid)
