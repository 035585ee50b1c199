"""The interface every VLM adapter implements.

An adapter hides one VLM's internals behind the few calls the segmentor
needs. It knows nothing of datasets or classes beyond the prompts it gets.
"""
import hashlib
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from ...class_names import PromptSet
from ..utils.settings import check_map_settings


def weights_fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash of a few frozen weights: it tells apart checkpoints of
    the same architecture (e.g. BLIP fine-tuned on COCO vs Flickr)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to('cpu', torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def check_prompt_chunk(prompt_chunk) -> int:
    if not isinstance(prompt_chunk, int) or prompt_chunk < 1:
        raise ValueError(f'prompt_chunk must be a positive integer, got '
                         f'{prompt_chunk!r}.')
    return prompt_chunk


def balanced_chunk(num_prompts: int, prompt_chunk: int) -> int:
    """Prompts per pass when ``num_prompts`` are split into the fewest
    passes of at most ``prompt_chunk``, all of nearly equal size (200 in
    chunks of 64 -> 4 x 50, not 64 + 64 + 64 + 8: a small last pass
    multiplies matrices at a lower rate)."""
    passes = -(-num_prompts // prompt_chunk)
    return -(-num_prompts // passes)


class BaseVLMAdapter(BaseModule):
    """Adapter interface.

    A subclass loads its VLM in ``__init__`` (after ``super().__init__``
    with the map settings) and sets ``num_heads`` (heads of the
    text-to-image attention layers), ``patch_size`` (input sizes are padded
    to a multiple of it), ``tokenizer`` and ``prompt_chunk``; ``num_layers``
    (the text-to-image attention layers, indexed from 0) is set or derived
    from the model. ``MODULE_PATHS`` names where the wrapped ``model`` keeps
    its parts (``get_submodule`` paths): the adapter reads its modules
    through :meth:`part`, and pretraining the embedded tiny VLMs reads the
    same table (:meth:`part_of`), so a VLM's layout is stated once.

    Args:
        itm_reduce: how a prompt's per-token ITM match becomes its score,
            one of :data:`~mmseg_powerone.models.utils.maps.ITM_REDUCE_MODES`
            (see :func:`~mmseg_powerone.models.utils.maps.reduce_itm`).
        map_mode: 'attention' (the pre-softmax text-to-image attention,
            steps 1-2 of docs/en/method.md) or 'gradcam' (post-softmax
            attention times its positive gradient of the matching logit).
        gradcam_head: with 'gradcam', one head's map (None: their mean).
    """

    num_layers: int
    num_heads: int
    patch_size: int
    MODULE_PATHS: Dict[str, str] = {}

    def __init__(self, itm_reduce: str = 'max', map_mode: str = 'attention',
                 gradcam_head: Optional[int] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_map_settings(itm_reduce, map_mode)
        self.itm_reduce = itm_reduce
        self.map_mode = map_mode
        self.gradcam_head = gradcam_head
        self.token_offsets = None  # see add_token_offsets

    @classmethod
    def part_of(cls, model: torch.nn.Module, name: str) -> torch.nn.Module:
        """Part ``name`` of ``MODULE_PATHS`` in a model of this VLM's
        architecture (the wrapped model, or one being pretrained)."""
        if name not in cls.MODULE_PATHS:
            raise KeyError(f'{cls.__name__}.MODULE_PATHS has no {name!r}; it '
                           f'names {sorted(cls.MODULE_PATHS)}.')
        return model.get_submodule(cls.MODULE_PATHS[name])

    def part(self, name: str) -> torch.nn.Module:
        """Part ``name`` of the wrapped ``model``."""
        return self.part_of(self.model, name)

    def prompt_chunks(self, prompts: Dict[str, torch.Tensor], device,
                      run: Callable, trim: bool = True) -> list:
        """The text loop every adapter runs: the prompts in the fewest
        passes of at most ``prompt_chunk`` (all of nearly equal size, see
        :func:`balanced_chunk`), each pass's tokens cut to its longest
        prompt unless ``trim`` is False, ``run(input_ids, attention_mask,
        name_mask)`` once per pass ([p, t] each, on ``device``). Returns
        the passes' results in prompt order."""
        ids = prompts['input_ids'].to(device)
        mask = prompts['attention_mask'].to(device)
        names = prompts['name_mask'].to(device)
        size = balanced_chunk(ids.shape[0], self.prompt_chunk)
        parts = []
        for s in range(0, ids.shape[0], size):
            m = mask[s:s + size]
            t = int(m.sum(1).max()) if trim else ids.shape[1]
            parts.append(run(ids[s:s + size, :t], m[:, :t],
                             names[s:s + size, :t]))
        return parts

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        """The text word-embedding table (what one-shot tuning trains)."""
        raise NotImplementedError

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

    def attention_module(self, layer: int) -> torch.nn.Module:
        """The module holding attention layer ``layer``'s text-to-image
        attention parameters (what one-shot tuning trains there)."""
        raise NotImplementedError

    def tunable_parameters(self, layers: Sequence[int],
                           embeddings: str = 'all') -> Dict[str, torch.nn.Parameter]:
        """The parameters one-shot tuning trains, by name (relative to the
        adapter): the text word embeddings ('all' the table, 'class_tokens'
        the offsets made by :meth:`add_token_offsets`) and every parameter of
        :meth:`attention_module` of ``layers``."""
        names = {id(p): n for n, p in self.named_parameters()}
        if embeddings == 'all':
            params = [self.word_embeddings.weight]
        elif embeddings == 'class_tokens':
            if self.token_offsets is None:
                raise RuntimeError("embeddings='class_tokens' needs "
                                   'add_token_offsets() first.')
            params = [self.token_offsets]
        else:
            raise ValueError(f"embeddings={embeddings!r}; use 'all' or "
                             "'class_tokens'.")
        for l in layers:
            params.extend(self.attention_module(l).parameters())
        return {names[id(p)]: p for p in params}

    def add_token_offsets(self, texts: Sequence[str]) -> None:
        """Create trainable offsets (zero) for the word embeddings of the
        tokens of ``texts`` only, so tuning can leave the other rows intact."""
        ids = sorted({i for t in texts for i in self.tokenizer(
            t, add_special_tokens=False)['input_ids']})
        vocab = self.word_embeddings.num_embeddings
        row = torch.full((vocab, ), -1, dtype=torch.long)
        row[torch.tensor(ids, dtype=torch.long)] = torch.arange(len(ids))
        self.register_buffer('offset_row', row, persistent=False)  # [vocab]
        dim = self.word_embeddings.embedding_dim
        self.token_offsets = torch.nn.Parameter(torch.zeros(len(ids), dim))

    def embed_words(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Word embeddings [P, T, D] plus the tuned token offsets if any."""
        words = self.word_embeddings(input_ids)  # [P, T, D]
        if self.token_offsets is None:
            return words
        row = self.offset_row[input_ids]  # [P, T], -1: token without offset
        offset = self.token_offsets[row.clamp(min=0)]  # [P, T, D]
        return words + torch.where((row >= 0)[..., None], offset.to(words.dtype), 0.0)

    def compile_targets(self) -> List[torch.nn.Module]:
        """The modules :meth:`compile_modules` compiles: those that run
        with the same shapes call after call (the image encoder; per-layer
        pieces of the text side), where ``torch.compile`` fuses the
        elementwise steps and, with ``mode='reduce-overhead'`` on CUDA,
        replays them as CUDA graphs instead of launching kernel by kernel."""
        raise NotImplementedError(
            f'{type(self).__name__} does not list modules to compile; '
            'implement compile_targets() or build the segmentor without '
            '`compile`.')

    def compile_modules(self, **options) -> None:
        """``torch.compile`` each of :meth:`compile_targets` in place
        (``nn.Module.compile``: parameter names, checkpoints and tuning
        are unchanged) with ``options`` (``torch.compile``'s keywords)."""
        for module in self.compile_targets():
            module.compile(**options)

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
                layers: Sequence[int]) -> Dict:
        """Per-layer reduced text-to-image attention and ITM scores, with
        the map settings the adapter was built with (``itm_reduce``,
        ``map_mode``, ``gradcam_head``).

        Args:
            inputs: preprocessed images, [B, 3, H, W], H and W multiples of
                ``patch_size``.
            prompts: the output of :meth:`prompt_batch`.
            layers: attention layers to capture.
        Returns:
            dict(attn=[B, len(layers), P, h*w], itm=[B, P], grid=(h, w))
        """
        raise NotImplementedError
