"""ALBEFAdapter: official checkpoint layouts, strict loading, and ITM and
maps against a direct computation from the checkpoint's tensors."""
import math
import os

import pytest

from helpers import run_adapter
import torch
import torch.nn.functional as F

from official_formats import ALBEF_TEXT, ALBEF_VISION, albef_state_dict

WORDS = ['sky', 'grass', 'cat', 'dog', 'puppy', 'tree', 'hound']


@pytest.fixture(scope='module')
def tokenizer_dir(tmp_path_factory):
    from mmseg_powerone.shapes.tiny_vlms import save_tokenizer
    out = str(tmp_path_factory.mktemp('albef_tok'))
    save_tokenizer(out, WORDS)
    return out


def _vocab(tokenizer_dir):
    from transformers import AutoTokenizer
    return len(AutoTokenizer.from_pretrained(tokenizer_dir))


def _save(tmp_path, state, name='ALBEF.pth'):
    path = str(tmp_path / name)
    torch.save({'model': state, 'epoch': 29}, path)
    return path


def _adapter(path, tokenizer_dir, **kw):
    from mmseg_powerone.models.adapters.albef import ALBEFAdapter
    kw = dict(dict(vision_heads=ALBEF_VISION['heads'],
                   text_heads=ALBEF_TEXT['heads']), **kw)
    return ALBEFAdapter(checkpoint=path, tokenizer=tokenizer_dir, **kw)


@pytest.mark.parametrize('pretrain', [True, False],
                         ids=['ALBEF.pth-layout', 'retrieval-layout'])
def test_official_checkpoint_loads_with_no_missing_or_unexpected_keys(
        tmp_path, tokenizer_dir, pretrain):
    state, training = albef_state_dict(_vocab(tokenizer_dir), pretrain)
    adapter = _adapter(_save(tmp_path, state), tokenizer_dir)
    report = adapter.load_report
    assert report['missing'] == [] and report['unexpected'] == []
    assert sorted(k.replace('text_encoder.bert.', 'text_encoder.', 1)
                  .replace('text_encoder_m.bert.', 'text_encoder_m.', 1)
                  for k in training) == sorted(report['ignored'])
    # every kept tensor landed where its official name says
    own = adapter.model.state_dict()
    for key, value in state.items():
        k = key.replace('text_encoder.bert.', 'text_encoder.', 1)
        if k in own:
            assert torch.equal(own[k], value), key
    assert len(own) == len(state) - len(training)
    assert adapter.num_layers == ALBEF_TEXT['layers'] - ALBEF_TEXT['fusion']
    assert adapter.cross_layer_ids == list(range(ALBEF_TEXT['fusion'],
                                                 ALBEF_TEXT['layers']))


def test_loading_refuses_missing_unknown_and_unsafe_content(tmp_path, tokenizer_dir):
    state, _ = albef_state_dict(_vocab(tokenizer_dir))
    broken = dict(state)
    del broken['text_encoder.bert.encoder.layer.2.crossattention.self.key.bias']
    with pytest.raises(ValueError, match=r'missing keys.*crossattention\.self\.key\.bias'):
        _adapter(_save(tmp_path, broken, 'a.pth'), tokenizer_dir)
    extra = dict(state, **{'text_decoder.bert.pooler.dense.weight': torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r'unexpected keys.*text_decoder'):
        _adapter(_save(tmp_path, extra, 'b.pth'), tokenizer_dir)
    with pytest.raises(ValueError, match='lacks'):
        _adapter(_save(tmp_path, {'w': torch.zeros(1)}, 'c.pth'), tokenizer_dir)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        _adapter(str(tmp_path / 'nope.pth'), tokenizer_dir)

    class Payload:
        def __reduce__(self):
            return (os.system, ('touch ' + str(tmp_path / 'pwned'), ))

    torch.save({'model': state, 'x': Payload()}, tmp_path / 'evil.pth')
    with pytest.raises(ValueError, match='weights-only'):
        _adapter(str(tmp_path / 'evil.pth'), tokenizer_dir)
    assert not (tmp_path / 'pwned').exists()
    with pytest.raises(ValueError, match='text_heads=5 does not divide'):
        _adapter(_save(tmp_path, state, 'd.pth'), tokenizer_dir, text_heads=5)


def _direct_itm_and_scores(state, ids, mask, pixels, layer):
    """ALBEF's forward written out from the checkpoint tensors: ViT, BERT
    text layers, fusion layers with cross-attention, ITM at [CLS]. Returns
    the match probability [P], the pre-softmax cross-attention scores and
    the post-softmax attention (in the autograd graph) [P, H, T, N] of text
    layer ``layer``, and the ITM match logits [P]."""
    v, t = ALBEF_VISION, ALBEF_TEXT
    W = {k.replace('text_encoder.bert.', 'T.').replace('visual_encoder.', 'V.'): x
         for k, x in state.items()}

    def lin(x, name):
        return x @ W[name + '.weight'].T + W[name + '.bias']

    def ln(x, name, eps):
        return F.layer_norm(x, x.shape[-1:], W[name + '.weight'], W[name + '.bias'], eps)

    def attend(q, k, v_, heads, add_mask=None):
        P, T_, D = q.shape
        d = D // heads
        sp = lambda x: x.view(P, -1, heads, d).transpose(1, 2)  # noqa: E731
        s = sp(q) @ sp(k).transpose(-1, -2) / math.sqrt(d)
        if add_mask is not None:
            s = s + add_mask
        a = s.softmax(-1)
        return (a @ sp(v_)).transpose(1, 2).reshape(P, T_, D), (s, a)

    # vision
    p = v['patch']
    x = F.conv2d(pixels, W['V.patch_embed.proj.weight'], W['V.patch_embed.proj.bias'],
                 stride=p).flatten(2).transpose(1, 2)
    x = torch.cat([W['V.cls_token'].expand(x.shape[0], -1, -1), x], 1) + W['V.pos_embed']
    for i in range(v['depth']):
        b = f'V.blocks.{i}.'
        y = ln(x, b + 'norm1', 1e-6)
        q, k, vv = lin(y, b + 'attn.qkv').chunk(3, dim=-1)
        x = x + lin(attend(q, k, vv, v['heads'])[0], b + 'attn.proj')
        y = ln(x, b + 'norm2', 1e-6)
        x = x + lin(F.gelu(lin(y, b + 'mlp.fc1')), b + 'mlp.fc2')
    img = ln(x, 'V.norm', 1e-6)
    P = ids.shape[0]
    img = img.expand(P, -1, -1)
    # text
    T = ids.shape[1]
    h = (W['T.embeddings.word_embeddings.weight'][ids]
         + W['T.embeddings.position_embeddings.weight'][:T]
         + W['T.embeddings.token_type_embeddings.weight'][0])
    h = ln(h, 'T.embeddings.LayerNorm', 1e-12).requires_grad_(True)
    add = (1 - mask[:, None, None, :].float()) * -1e9
    scores = probs = None
    for i in range(t['layers']):
        b = f'T.encoder.layer.{i}.'
        ctx, _ = attend(lin(h, b + 'attention.self.query'), lin(h, b + 'attention.self.key'),
                        lin(h, b + 'attention.self.value'), t['heads'], add)
        h = ln(lin(ctx, b + 'attention.output.dense') + h, b + 'attention.output.LayerNorm', 1e-12)
        if i >= t['fusion']:
            c = b + 'crossattention.'
            ctx, (s, a) = attend(lin(h, c + 'self.query'), lin(img, c + 'self.key'),
                                 lin(img, c + 'self.value'), t['heads'])
            if i == layer:
                scores, probs = s, a
            h = ln(lin(ctx, c + 'output.dense') + h, c + 'output.LayerNorm', 1e-12)
        y = lin(F.gelu(lin(h, b + 'intermediate.dense')), b + 'output.dense')
        h = ln(y + h, b + 'output.LayerNorm', 1e-12)
    logits = h[:, 0] @ W['itm_head.weight'].T + W['itm_head.bias']
    return logits.softmax(-1)[:, 1], scores, probs, logits[:, 1]


def test_itm_and_maps_equal_a_direct_computation(tmp_path, tokenizer_dir):
    from mmseg_powerone.class_names import build_prompts
    from mmseg_powerone.models.utils.maps import reduce_attention
    state, _ = albef_state_dict(_vocab(tokenizer_dir))
    adapter = _adapter(_save(tmp_path, state), tokenizer_dir)
    prompts = build_prompts([['sky', 'grass'], ['cat'], ['dog', 'puppy']],
                            ['image of {}.', 'a {}.'])
    tok = adapter.prompt_batch(prompts)
    grid = ALBEF_VISION['grid'] * ALBEF_VISION['patch']
    pixels = torch.randn(1, 3, grid, grid, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = run_adapter(adapter, pixels, tok, [0, 2], itm_reduce='first')
        cam = run_adapter(adapter, pixels, tok, [0, 2], map_mode='gradcam')
    for j, l in enumerate([0, 2]):
        itm, scores, probs, logit = _direct_itm_and_scores(
            state, tok['input_ids'], tok['attention_mask'], pixels,
            ALBEF_TEXT['fusion'] + l)
        assert torch.allclose(out['itm'][0], itm.detach(), atol=1e-5)
        want = reduce_attention(scores.detach(), tok['attention_mask'])
        assert torch.allclose(out['attn'][0, j], want, atol=1e-4, rtol=1e-5)
        # GradCAM: attention x its positive gradient of the match logit,
        # heads averaged, class-name rows averaged, [CLS] column dropped
        grad, = torch.autograd.grad(logit.sum(), probs)
        g = (probs * grad.clamp(min=0)).mean(1).detach()  # [P, T, N]
        for p, (text, name) in enumerate(zip(prompts.texts, prompts.names)):
            ids = tok['input_ids'][p].tolist()
            name_ids = adapter.tokenizer(name, add_special_tokens=False)['input_ids']
            at = next(i for i in range(len(ids)) if ids[i:i + len(name_ids)] == name_ids)
            want = g[p, at:at + len(name_ids), 1:].mean(0)
            assert torch.allclose(cam['attn'][0, j, p], want, atol=1e-5), text
    assert out['grid'] == (ALBEF_VISION['grid'], ALBEF_VISION['grid'])
