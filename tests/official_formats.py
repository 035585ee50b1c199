"""Checkpoints in the official formats of other projects, written from
their published key names and shapes (not from this package's modules), so
that loading them tests our key mapping for real."""
import torch

ALBEF_VISION = dict(dim=48, depth=2, heads=4, patch=16, grid=4)
ALBEF_TEXT = dict(dim=32, layers=4, fusion=1, heads=4, max_pos=64, embed=32)


def _albef_vit(prefix, v):
    D, p = v['dim'], v['patch']
    out = {f'{prefix}cls_token': (1, 1, D),
           f'{prefix}pos_embed': (1, v['grid'] ** 2 + 1, D),
           f'{prefix}patch_embed.proj.weight': (D, 3, p, p),
           f'{prefix}patch_embed.proj.bias': (D, ),
           f'{prefix}norm.weight': (D, ), f'{prefix}norm.bias': (D, )}
    for i in range(v['depth']):
        b = f'{prefix}blocks.{i}.'
        out.update({b + 'norm1.weight': (D, ), b + 'norm1.bias': (D, ),
                    b + 'attn.qkv.weight': (3 * D, D), b + 'attn.qkv.bias': (3 * D, ),
                    b + 'attn.proj.weight': (D, D), b + 'attn.proj.bias': (D, ),
                    b + 'norm2.weight': (D, ), b + 'norm2.bias': (D, ),
                    b + 'mlp.fc1.weight': (4 * D, D), b + 'mlp.fc1.bias': (4 * D, ),
                    b + 'mlp.fc2.weight': (D, 4 * D), b + 'mlp.fc2.bias': (D, )})
    return out


def _albef_bert(prefix, vocab, t, vision_dim):
    D = t['dim']
    out = {f'{prefix}embeddings.word_embeddings.weight': (vocab, D),
           f'{prefix}embeddings.position_embeddings.weight': (t['max_pos'], D),
           f'{prefix}embeddings.token_type_embeddings.weight': (2, D),
           f'{prefix}embeddings.LayerNorm.weight': (D, ),
           f'{prefix}embeddings.LayerNorm.bias': (D, )}
    for i in range(t['layers']):
        b = f'{prefix}encoder.layer.{i}.'
        blocks = [('attention.', D)] + (
            [('crossattention.', vision_dim)] if i >= t['fusion'] else [])
        for name, kv in blocks:
            out.update({b + name + 'self.query.weight': (D, D),
                        b + name + 'self.query.bias': (D, ),
                        b + name + 'self.key.weight': (D, kv),
                        b + name + 'self.key.bias': (D, ),
                        b + name + 'self.value.weight': (D, kv),
                        b + name + 'self.value.bias': (D, ),
                        b + name + 'output.dense.weight': (D, D),
                        b + name + 'output.dense.bias': (D, ),
                        b + name + 'output.LayerNorm.weight': (D, ),
                        b + name + 'output.LayerNorm.bias': (D, )})
        out.update({b + 'intermediate.dense.weight': (4 * D, D),
                    b + 'intermediate.dense.bias': (4 * D, ),
                    b + 'output.dense.weight': (D, 4 * D),
                    b + 'output.dense.bias': (D, ),
                    b + 'output.LayerNorm.weight': (D, ),
                    b + 'output.LayerNorm.bias': (D, )})
    return out


def albef_state_dict(vocab: int, pretrain: bool = True, seed: int = 0,
                     queue: int = 8):
    """An ALBEF checkpoint's ``model`` entry: pretraining layout
    (``ALBEF.pth``: BertForMaskedLM text encoders under ``.bert.`` with an
    MLM head ``.cls.``) or retrieval layout (``mscoco.pth``: BertModel text
    encoders, an ``idx_queue``); momentum encoders and queues included, as
    the official files have them. Returns (state, training-only keys)."""
    v, t = ALBEF_VISION, ALBEF_TEXT
    E, D = t['embed'], t['dim']
    shapes, training = {}, set()
    for m in ('', '_m'):
        part = dict(_albef_vit(f"visual_encoder{m}.", v))
        bert = f'text_encoder{m}.bert.' if pretrain else f'text_encoder{m}.'
        part.update(_albef_bert(bert, vocab, t, v['dim']))
        part[bert + 'embeddings.position_ids'] = None
        if pretrain:
            c = f'text_encoder{m}.cls.predictions.'
            part.update({c + 'bias': (vocab, ), c + 'transform.dense.weight': (D, D),
                         c + 'transform.dense.bias': (D, ),
                         c + 'transform.LayerNorm.weight': (D, ),
                         c + 'transform.LayerNorm.bias': (D, ),
                         c + 'decoder.weight': (vocab, D), c + 'decoder.bias': (vocab, )})
        part.update({f'vision_proj{m}.weight': (E, v['dim']),
                     f'vision_proj{m}.bias': (E, ),
                     f'text_proj{m}.weight': (E, D), f'text_proj{m}.bias': (E, )})
        if m:
            training.update(part)
        else:
            training.update(k for k in part if '.cls.' in k or 'position_ids' in k)
        shapes.update(part)
    shapes.update({'temp': (), 'itm_head.weight': (2, D), 'itm_head.bias': (2, ),
                   'image_queue': (E, queue), 'text_queue': (E, queue),
                   'queue_ptr': (1, )})
    training.update(['image_queue', 'text_queue', 'queue_ptr'])
    if not pretrain:
        shapes['idx_queue'] = (1, queue)
        training.add('idx_queue')
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in shapes.items():
        if k.endswith('position_ids'):
            state[k] = torch.arange(t['max_pos']).view(1, -1)
        elif k in ('queue_ptr', 'idx_queue'):
            state[k] = torch.zeros(shape, dtype=torch.long)
        elif 'LayerNorm' in k or k.startswith(('visual_encoder.norm',)) \
                or '.norm1.' in k or '.norm2.' in k:
            state[k] = 1 + 0.1 * torch.randn(shape, generator=g) \
                if k.endswith('weight') else 0.1 * torch.randn(shape, generator=g)
        elif k == 'temp':
            state[k] = torch.tensor(0.07)
        else:
            fan = shape[-1] if len(shape) > 1 else 1
            state[k] = torch.randn(shape, generator=g) * 0.5 / fan ** 0.5
    return state, sorted(training)
