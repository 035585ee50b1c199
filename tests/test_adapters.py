"""The generic adapter suite: every VLM adapter (BLIP, ALBEF, LLaVA, on
tiny models in their official formats) must pass it. Adding a VLM means
adding it to ``vlm_case`` in conftest.py and making this file pass
(docs/en/adding_a_vlm.md)."""
import json
import shutil

import pytest

from helpers import run_adapter
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

CLASSES = ['sky, grass', 'cat', 'dog, puppy']


def build(vlm_case, **kwargs):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    vlm, extra = vlm_case
    cfg = dict(type='VLMAttentionSegmentor', vlm=dict(vlm),
               class_names=CLASSES, **extra)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


def images(n=2, size=32, seed=0):
    return torch.randn(n, 3, size, size,
                       generator=torch.Generator().manual_seed(seed))


def labelled(n=2, size=32):
    samples = []
    for i in range(n):
        label = torch.zeros(1, size, size, dtype=torch.long)
        label[:, 4:20, 6:22] = 1 + i % 2
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label)))
    return images(n, size), samples


def test_interface_attributes_and_signature(vlm_case):
    model = build(vlm_case)
    a = model.adapter
    for name in ('num_layers', 'num_heads', 'patch_size'):
        assert isinstance(getattr(a, name), int) and getattr(a, name) > 0, name
    sig = a.signature()
    assert sig['type'] == vlm_case[0]['type']
    assert json.loads(json.dumps(sig)) == sig  # goes into checkpoint meta
    assert not any(p.requires_grad for p in a.parameters())


@pytest.mark.parametrize('map_mode', ['attention', 'gradcam'])
def test_forward_shapes_ranges_and_batch_independence(vlm_case, map_mode):
    model = build(vlm_case)
    a = model.adapter
    tok = a.prompt_batch(model.prompts)
    P = len(model.prompts.texts)
    assert tok['name_mask'].shape == tok['input_ids'].shape
    assert (tok['name_mask'].sum(1) > 0).all()
    x = images(2, 48)
    layers = list(range(a.num_layers))
    with torch.no_grad():
        out = run_adapter(a, x, tok, layers, map_mode=map_mode)
        one = run_adapter(a, x[1:], tok, layers, map_mode=map_mode)
    h, w = out['grid']
    assert (h, w) == (48 // a.patch_size, 48 // a.patch_size)
    assert out['attn'].shape == (2, len(layers), P, h * w)
    assert out['itm'].shape == (2, P)
    assert torch.isfinite(out['attn']).all()
    assert ((out['itm'] >= 0) & (out['itm'] <= 1)).all()
    if map_mode == 'gradcam':
        assert (out['attn'] >= 0).all()
    assert torch.allclose(out['attn'][1], one['attn'][0], atol=1e-5)
    assert torch.allclose(out['itm'][1], one['itm'][0], atol=1e-6)
    assert all(p.grad is None for p in a.parameters())


@pytest.mark.parametrize('map_mode', ['attention', 'gradcam'])
def test_a_layers_map_does_not_depend_on_which_others_are_read(vlm_case,
                                                               map_mode):
    """Layers whose scores are not read take a faster path (BLIP, ALBEF:
    scaled_dot_product_attention; GradCAM's graph starts at the first read
    layer): reading one layer or all of them gives that layer the same
    maps and the same matching scores."""
    model = build(vlm_case)
    a = model.adapter
    tok = a.prompt_batch(model.prompts)
    x = images(2, 32, seed=4)
    every = list(range(a.num_layers))
    with torch.no_grad():
        full = run_adapter(a, x, tok, every, map_mode=map_mode)
        for l in (a.num_layers - 1, a.num_layers // 2):
            alone = run_adapter(a, x, tok, [l], map_mode=map_mode)
            torch.testing.assert_close(alone['attn'][:, 0], full['attn'][:, l],
                                       atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(alone['itm'], full['itm'], atol=1e-6,
                                       rtol=1e-5)


@pytest.mark.parametrize('map_mode', ['attention', 'gradcam'])
def test_compiled_modules_give_the_same_maps(vlm_case, map_mode):
    """``compile=`` compiles every module the adapter lists, in place
    (parameter names unchanged), and the maps, matching scores and
    GradCAM's backward through the compiled parts stay those of eager.
    Dynamo traces each module here; its 'eager' backend runs the traced
    graphs as they are (the slow test runs inductor's kernels)."""
    import torch._dynamo
    torch._dynamo.reset()
    eager = build(vlm_case, map_mode=map_mode)
    compiled = build(vlm_case, map_mode=map_mode,
                     compile=dict(backend='eager', dynamic=False))
    targets = compiled.adapter.compile_targets()
    assert targets and all(m._compiled_call_impl is not None for m in targets)
    assert all(m._compiled_call_impl is None
               for m in eager.adapter.compile_targets())
    assert list(compiled.state_dict(keep_vars=True)) == \
        list(eager.state_dict(keep_vars=True))
    x = images(2, 32, seed=5)
    tok = eager.adapter.prompt_batch(eager.prompts)
    layers = [0, eager.adapter.num_layers - 1]
    from torch._dynamo.utils import counters
    counters.clear()
    with torch.no_grad():
        want = run_adapter(eager.adapter, x, tok, layers,
                           map_mode=map_mode)
        assert not counters['stats']['unique_graphs']
        got = run_adapter(compiled.adapter, x, tok, layers,
                          map_mode=map_mode)
    assert counters['stats']['unique_graphs'] > 0  # dynamo did trace them
    torch.testing.assert_close(got['attn'], want['attn'], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(got['itm'], want['itm'], atol=1e-6, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('g++') is None and shutil.which('c++') is None,
                    reason="inductor's CPU kernels need a C++ compiler")
def test_inductor_compiled_segmentor_gives_the_same_maps(build_segmentor):
    """The default backend (inductor: generated, fused kernels) on the
    segmentor's whole map path, twice (the second call reuses the compiled
    code): the same seg logits as eager."""
    import torch._dynamo
    torch._dynamo.reset()
    eager = build_segmentor(layers=[0, 2])
    compiled = build_segmentor(layers=[0, 2], compile=dict(dynamic=False))
    x = images(2, 48, seed=6)
    with torch.no_grad():
        want = eager.encode_decode(x)
        for _ in range(2):
            torch.testing.assert_close(compiled.encode_decode(x), want,
                                       atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('value', ['yes', 3, dict(mode='fastest'),
                                   dict(fullgraph='no', foo=1)])
def test_bad_compile_option_is_refused_at_build(build_segmentor, value):
    with pytest.raises(ValueError, match='compile='):
        build_segmentor(compile=value)


@pytest.mark.parametrize('map_mode', ['attention', 'gradcam'])
def test_prompt_chunks_do_not_change_results(vlm_case, map_mode):
    model = build(vlm_case)
    a = model.adapter
    tok = a.prompt_batch(model.prompts)
    x = images(1, 32)
    with torch.no_grad():
        whole = run_adapter(a, x, tok, [0, a.num_layers - 1],
                            map_mode=map_mode)
        a.prompt_chunk = 1
        chunked = run_adapter(a, x, tok, [0, a.num_layers - 1],
                              map_mode=map_mode)
    assert torch.allclose(whole['attn'], chunked['attn'], atol=1e-5)
    assert torch.allclose(whole['itm'], chunked['itm'], atol=1e-6)


def test_gradcam_and_attention_modes_share_the_matching_score(vlm_case):
    model = build(vlm_case)
    a = model.adapter
    tok = a.prompt_batch(model.prompts)
    x = images(1, 32)
    with torch.no_grad():
        att = run_adapter(a, x, tok, [0], map_mode='attention')
        cam = run_adapter(a, x, tok, [0], map_mode='gradcam')
        one_head = run_adapter(a, x, tok, [0], map_mode='gradcam',
                               gradcam_head=a.num_heads - 1)
    assert torch.allclose(att['itm'], cam['itm'], atol=1e-6)
    assert not torch.allclose(att['attn'], cam['attn'])
    assert not torch.allclose(cam['attn'], one_head['attn'])


def test_segmentor_predicts_through_the_adapter(vlm_case):
    model = build(vlm_case, layers=[0])
    with torch.no_grad():
        results = model.predict(images(2, 32))
    for r in results:
        seg = r.pred_sem_seg.data
        assert seg.shape == (1, 32, 32)
        assert int(seg.max()) < len(CLASSES)
    with torch.no_grad():
        again = model.predict(images(2, 32))
    assert all(torch.equal(r.seg_logits.data, s.seg_logits.data)
               for r, s in zip(results, again))  # deterministic


@pytest.mark.parametrize('embeddings', ['all', 'class_tokens'])
def test_one_shot_tuning_trains_only_the_tunable_parameters(vlm_case, embeddings):
    model = build(vlm_case, layers=[0], train_cfg=dict(
        tune_embeddings=embeddings, background_weight=0.5))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    inputs, samples = labelled()
    losses = []
    for _ in range(3):
        loss = model.loss(inputs, samples)['loss_nll']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    tuned = {'vlm.' + n for n in model.tuned_params}
    assert tuned == {'vlm.' + n for n in model.adapter.tunable_parameters(
        [0], embeddings)}
    assert len(tuned) > 1  # embeddings and the layer's attention
    changed = {n for n, p in model.named_parameters()
               if not torch.equal(p, before[n])}
    assert changed and changed <= tuned
    # the tuned-only checkpoint reloads to the same maps
    state = model.state_dict()
    fresh = build(vlm_case, layers=[0], train_cfg=dict(
        tune_embeddings=embeddings, background_weight=0.5))
    fresh.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(fresh.encode_decode(inputs),
                              model.encode_decode(inputs), atol=1e-6)


def test_checkpoint_of_another_vlm_is_refused(vlm_case, tiny_blip_dir):
    model = build(vlm_case, layers=[0], train_cfg=dict(
        tune_embeddings='all', background_weight=0.5))
    model.start_tuning()
    other = build((dict(type='BLIPAdapter', pretrained=tiny_blip_dir), {}),
                  layers=[0], train_cfg=dict(tune_embeddings='all',
                                             background_weight=0.5))
    other.start_tuning()
    if vlm_case[0]['type'] == 'BLIPAdapter':
        model.load_state_dict(other.state_dict())
        return
    with pytest.raises(ValueError, match='different VLM'):
        model.load_state_dict(other.state_dict())
