"""Official ALBEF checkpoints (``ALBEF.pth``, ``ALBEF_4M.pth`` and their
retrieval fine-tunes, ``{'model': state_dict}``) to :class:`ALBEFModel` and
back: the sizes read from the weights, the training-only entries dropped."""
import re
from typing import Dict, Tuple

import torch

from ...adapters.loading import load_torch_checkpoint
from .modeling import ALBEFModel

# Official checkpoint entries used only to train ALBEF: momentum encoders,
# feature queues and the masked-language-model head.
TRAINING_ONLY = re.compile(
    r'^(visual_encoder_m|text_encoder_m|vision_proj_m|text_proj_m)\.'
    r'|^(image_queue|text_queue|idx_queue|queue_ptr)$'
    r'|^text_encoder\.cls\.'
    r'|^text_encoder\.embeddings\.position_ids$')


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
