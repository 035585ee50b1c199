"""VLMAttentionSegmentor + BLIPAdapter on a tiny random BLIP."""

import pytest
import torch
import torch.nn.functional as F

from helpers import hf_blip_forward

CLASSES = ['sky, grass, tree', 'cat', 'dog, puppy, hound']


def reference_layer_maps(adapter, prompts, pixels, layers, itm_reduce):
    """docs/en/method.md steps 1-5 written out with loops, from the
    tensors of the Hugging Face model's own forward pass (a fresh,
    unpatched copy: the adapter runs the vision attention through SDPA)."""
    from transformers import BlipForImageTextRetrieval
    model = BlipForImageTextRetrieval.from_pretrained(
        adapter.pretrained, attn_implementation='eager').eval()
    with torch.no_grad():
        out, mask, scores = hf_blip_forward(model, adapter.tokenizer,
                                            prompts.texts, pixels, layers)
        match = model.itm_head(out.question_embeds).softmax(-1)[..., 1]
    P, T = mask.shape
    if itm_reduce == 'first':
        itm = out.itm_score.softmax(-1)[:, 1]
    elif itm_reduce == 'max':  # every position of the set's padded length
        itm = match.max(dim=1).values
    else:  # 'max_real'
        itm = torch.stack([match[p, :int(mask[p].sum())].max() for p in range(P)])
    C = prompts.num_classes
    maps = []
    for l in layers:
        S = scores[l]  # [P, H, T, N]
        N = S.shape[-1] - 1
        A = torch.zeros(P, N)
        for p in range(P):
            for t in range(T):
                if mask[p, t]:
                    A[p] += S[p, :, t, 1:].max(dim=0).values
        M = A.softmax(dim=0) * itm[:, None]
        cls = torch.zeros(C, N)
        for c in range(C):
            rows = [M[p] for p in range(P) if prompts.class_index[p] == c]
            cls[c] = (torch.stack(rows).sum(0)
                      if c == 0 and prompts.has_background
                      else torch.stack(rows).max(0).values)
        maps.append(cls)
    return torch.stack(maps), itm


def image(h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, h, w, generator=g)


@pytest.mark.parametrize('itm_reduce', ['max', 'max_real', 'first'])
def test_layer_maps_match_reference_formula(build_segmentor, itm_reduce):
    # Same-length prompts (no padding) with synonyms on both background and
    # an object class, in multi-prompt mode.
    seg = build_segmentor(class_names=['sky, tree', 'cat', 'dog, hound'],
                          multi_prompt=True, itm_reduce=itm_reduce)
    x = image()
    layers = [0, 1, 2]
    out = seg.layer_maps(x, layers)
    ref_maps, ref_itm = reference_layer_maps(seg.vlm, seg.prompts, x, layers,
                                             itm_reduce)
    h = w = 64 // 16
    assert out['maps'].shape == (1, 3, 3, h, w)
    assert out['itm'].shape == (1, 5)  # sky, tree, cat, dog, hound
    torch.testing.assert_close(out['itm'][0], ref_itm, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out['maps'][0].flatten(2), ref_maps,
                               atol=1e-4, rtol=1e-4)


def test_layer_maps_without_background_match_reference(build_segmentor):
    # VOC20-style class lists: the first class is an object class, so its
    # synonyms are grouped by max like the others, not summed.
    seg = build_segmentor(class_names=['sky, tree', 'cat', 'dog, hound'],
                          multi_prompt=True, has_background=False)
    assert not seg.prompts.has_background
    x = image(seed=5)
    out = seg.layer_maps(x, [0, 2])
    ref_maps, _ = reference_layer_maps(seg.vlm, seg.prompts, x, [0, 2], 'max')
    torch.testing.assert_close(out['maps'][0].flatten(2), ref_maps,
                               atol=1e-4, rtol=1e-4)
    with_bg = build_segmentor(class_names=['sky, tree', 'cat', 'dog, hound'],
                              multi_prompt=True).layer_maps(x, [0, 2])
    assert not torch.allclose(with_bg['maps'][:, :, 0], out['maps'][:, :, 0])


PADDED = ['sky, grass', 'cat, kitten', 'dog, potted plant']


@pytest.mark.parametrize('itm_reduce', ['max', 'max_real'])
def test_layer_maps_with_padded_prompts_match_reference(build_segmentor,
                                                        itm_reduce):
    # 'kitten' and 'potted plant' are out of the tiny vocabulary: several
    # word pieces, so the prompt batch is padded.
    seg = build_segmentor(class_names=PADDED, multi_prompt=True,
                          itm_reduce=itm_reduce)
    enc = seg.prompt_tokens()
    assert (enc['attention_mask'] == 0).any(), 'fixture must have padding'
    x = image(seed=3)
    out = seg.layer_maps(x, [1, 2])
    ref_maps, ref_itm = reference_layer_maps(seg.vlm, seg.prompts, x, [1, 2],
                                             itm_reduce)
    torch.testing.assert_close(out['itm'][0], ref_itm, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out['maps'][0].flatten(2), ref_maps,
                               atol=1e-4, rtol=1e-4)


def test_itm_modes_differ(build_segmentor):
    x = image(seed=1)
    a = build_segmentor(itm_reduce='max').layer_maps(x)['itm']
    b = build_segmentor(itm_reduce='first').layer_maps(x)['itm']
    assert (a >= b - 1e-6).all() and not torch.allclose(a, b)


@pytest.mark.parametrize('itm_reduce', ['max', 'max_real', 'first'])
def test_prompt_chunks_do_not_change_itm(build_segmentor, tiny_blip_dir,
                                         itm_reduce):
    """Chunks of one or two prompts give every prompt the score it has in
    one pass: for 'max' each chunk keeps the whole set's padding, whose
    positions the score reads (a chunk trimmed to its own longest prompt
    would change it)."""
    x = image(seed=4)
    whole = build_segmentor(class_names=PADDED, multi_prompt=True,
                            itm_reduce=itm_reduce).layer_maps(x, [0, 2])
    for chunk in (1, 2):
        seg = build_segmentor(class_names=PADDED, multi_prompt=True,
                              itm_reduce=itm_reduce,
                              vlm=dict(type='BLIPAdapter',
                                       pretrained=tiny_blip_dir,
                                       prompt_chunk=chunk))
        out = seg.layer_maps(x, [0, 2])
        torch.testing.assert_close(out['itm'], whole['itm'], atol=1e-6,
                                   rtol=1e-5)
        torch.testing.assert_close(out['maps'], whole['maps'], atol=1e-6,
                                   rtol=1e-5)


def test_max_reads_padding_positions(build_segmentor):
    """With padded prompts the reference's 'max' and the real-token
    'max_real' differ on the padded prompts, and only there."""
    x = image(seed=3)
    a = build_segmentor(class_names=PADDED, multi_prompt=True,
                        itm_reduce='max')
    b = build_segmentor(class_names=PADDED, multi_prompt=True,
                        itm_reduce='max_real')
    ia, ib = a.layer_maps(x, [0])['itm'][0], b.layer_maps(x, [0])['itm'][0]
    padded = (a.prompt_tokens()['attention_mask'] == 0).any(1)
    assert padded.any() and (~padded).any()
    torch.testing.assert_close(ia[~padded], ib[~padded])
    assert (ia[padded] >= ib[padded]).all()
    assert not torch.allclose(ia[padded], ib[padded])


def test_batch_of_four_equals_four_batches_of_one(build_segmentor):
    seg = build_segmentor(multi_prompt=True)
    x = torch.cat([image(seed=s) for s in range(4)])
    batched = seg.layer_maps(x)
    single = [seg.layer_maps(x[i:i + 1]) for i in range(4)]
    for key in ('maps', 'itm'):
        torch.testing.assert_close(
            batched[key], torch.cat([s[key] for s in single]),
            atol=1e-5, rtol=1e-5)


def test_prompt_chunking_does_not_change_results(build_segmentor, tiny_blip_dir):
    x = image(seed=2)
    whole = build_segmentor(multi_prompt=True).layer_maps(x)
    chunked = build_segmentor(
        multi_prompt=True,
        vlm=dict(type='BLIPAdapter', pretrained=tiny_blip_dir,
                 prompt_chunk=2)).layer_maps(x)
    for key in ('maps', 'itm'):
        torch.testing.assert_close(whole[key], chunked[key], atol=1e-5,
                                   rtol=1e-5)


def test_predict_is_argmax_of_normalised_upsampled_layer_mean(build_segmentor):
    seg = build_segmentor(layers=[2, 0])
    x = torch.cat([image(48, 80, seed=4), image(48, 80, seed=5)])
    results = seg.predict(x)
    maps = seg.layer_maps(x, [2, 0])['maps']  # [B, 2, C, h, w]
    up = F.interpolate(maps.mean(1), size=(48, 80), mode='bilinear',
                       align_corners=True)
    probs = up / up.sum(1, keepdim=True)
    for i, r in enumerate(results):
        torch.testing.assert_close(r.seg_logits.data, probs[i], atol=1e-5,
                                   rtol=1e-5)
        assert torch.equal(r.pred_sem_seg.data[0], probs[i].argmax(0))
    # every pixel holds a distribution over the classes
    torch.testing.assert_close(results[0].seg_logits.data.sum(0),
                               torch.ones(48, 80))


def test_ensemble_divides_in_place_only_without_grad():
    from mmseg_powerone.models.utils.maps import ensemble_probs
    maps = torch.rand(2, 3, 4, 6, 5, generator=torch.Generator().manual_seed(0))
    up = F.interpolate(maps.mean(1), size=(24, 20), mode='bilinear',
                       align_corners=True)
    expected = up / up.sum(1, keepdim=True)
    with torch.no_grad():  # in place: the very same values
        assert torch.equal(ensemble_probs(maps, (24, 20), True), expected)
    leaf = maps.clone().requires_grad_(True)
    probs = ensemble_probs(leaf, (24, 20), True)  # training: out of place
    assert torch.equal(probs.detach(), expected)
    (probs[:, 1] * torch.arange(20.)).sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_ensemble_differs_from_single_layers(build_segmentor):
    x = image(seed=6)
    p0 = build_segmentor(layers=[0])._forward(x)
    p02 = build_segmentor(layers=[0, 2])._forward(x)
    assert not torch.allclose(p0, p02)


def test_input_not_multiple_of_patch_is_padded(build_segmentor):
    seg = build_segmentor()
    probs = seg._forward(image(50, 70))
    assert probs.shape == (1, 3, 50, 70)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 50, 70))


def test_slide_with_one_crop_equals_whole(build_segmentor):
    x = image(64, 96, seed=7)
    whole = build_segmentor().inference(x, [{}])
    slide = build_segmentor(
        test_cfg=dict(mode='slide', crop_size=(64, 96), stride=(32, 32))
    ).inference(x, [{}])
    torch.testing.assert_close(whole, slide)


def test_slide_stitches_overlapping_crops(build_segmentor):
    # W=160, crop 64, stride 48: crops at x=0, 48, 96.
    seg = build_segmentor(
        test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(48, 48)))
    x = image(64, 160, seed=8)
    out = seg.inference(x, [{}])
    c0 = seg.encode_decode(x[:, :, :, 0:64])
    c1 = seg.encode_decode(x[:, :, :, 48:112])
    c2 = seg.encode_decode(x[:, :, :, 96:160])
    torch.testing.assert_close(out[..., :48], c0[..., :48])
    torch.testing.assert_close(out[..., 48:64], (c0[..., 48:] + c1[..., :16]) / 2)
    torch.testing.assert_close(out[..., 112:], c2[..., 16:])
    torch.testing.assert_close(out.sum(1), torch.ones(1, 64, 160))


@pytest.mark.parametrize('window_batch', [2, 8, 'auto'])
def test_batched_slide_windows_equal_one_by_one(build_segmentor, window_batch):
    # two images, 2 x 3 windows: batched passes must put every window of
    # every image back in its place
    cfg = dict(mode='slide', crop_size=(48, 64), stride=(32, 48))
    x = torch.cat([image(80, 160, seed=9), image(80, 160, seed=10)])
    one = build_segmentor(test_cfg=dict(cfg, window_batch=1))
    seen = []
    encode = one.encode_decode
    one.encode_decode = lambda crops, *a: seen.append(len(crops)) or encode(crops)
    expected = one.inference(x, [{}, {}])
    assert seen == [2] * 6
    batched = build_segmentor(test_cfg=dict(cfg, window_batch=window_batch))
    seen.clear()
    encode_b = batched.encode_decode
    batched.encode_decode = lambda crops, *a: seen.append(len(crops)) or encode_b(crops)
    out = batched.inference(x, [{}, {}])
    assert seen == ([4, 4, 4] if window_batch == 2 else [12])  # auto: all 6
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('bad', [0, -1, 2.5, True, 'all'])
def test_bad_window_batch_is_refused_at_build(build_segmentor, bad):
    with pytest.raises(ValueError, match='window_batch'):
        build_segmentor(test_cfg=dict(mode='slide', crop_size=64, stride=32,
                                      window_batch=bad))


def test_auto_window_batch_bounds_the_class_maps_of_a_pass():
    from mmseg_powerone.models.utils.slide import windows_per_pass
    # one fp32 [windows x batch, C, h, w] map within 512 MiB
    assert windows_per_pass('auto', 30, 1, 21, (512, 512)) == 24
    assert windows_per_pass('auto', 30, 1, 171, (512, 512)) == 2
    assert windows_per_pass('auto', 30, 4, 171, (512, 512)) == 1
    assert windows_per_pass('auto', 30, 1, 1000, (2048, 2048)) == 1
    assert windows_per_pass('auto', 6, 1, 3, (64, 64)) == 6  # all of them
    assert windows_per_pass(8, 6, 1, 3, (64, 64)) == 6
    assert windows_per_pass(2, 6, 1, 3, (64, 64)) == 2


def test_checkpoint_state_leaves_out_pretrained_vlm(build_segmentor):
    seg = build_segmentor()
    state = seg.state_dict()
    assert not any(k.startswith('vlm.') for k in state)
    # Loading that state strictly succeeds: the frozen VLM weights are not
    # reported missing, they come from `pretrained`.
    seg.load_state_dict(state, strict=True)
    with pytest.raises(ValueError, match=r"unexpected keys \['foo.weight'\]"):
        seg.load_state_dict(dict(state, **{'foo.weight': torch.zeros(1)}))


def test_benchmark_tool_injected_keys_are_accepted(build_segmentor):
    seg = build_segmentor(pretrained=None, train_cfg=None)
    assert seg.align_corners is True


@pytest.mark.parametrize('kwargs, exc, match', [
    (dict(layers=[0, 3]), ValueError, r'Layer index 3 is out of range.*0\.\.2'),
    (dict(layers=[-1]), ValueError, 'out of range'),
    (dict(layers=[]), ValueError, 'is empty'),
    (dict(layers=[1, 1]), ValueError, 'repeats'),
    (dict(itm_reduce='mean'), ValueError, "itm_reduce='mean'"),
    (dict(map_mode='foo'), ValueError, "map_mode='foo'"),
    (dict(vlm=dict(type='BLIPAdapter', pretrained='/no/such/dir')),
     FileNotFoundError, "'/no/such/dir' does not exist"),
    (dict(vlm=dict(type='BLIPAdapter', pretrained='./missing_blip')),
     FileNotFoundError, 'save_pretrained'),
])
def test_bad_config_errors(build_segmentor, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build_segmentor(**kwargs)


def test_layer_index_out_of_range_at_call_time(build_segmentor):
    with pytest.raises(ValueError, match='out of range'):
        build_segmentor().layer_maps(image(), [5])


def test_itm_reweight_off_is_plain_prompt_softmax(build_segmentor):
    names = ['sky', 'cat', 'dog']  # one prompt per class: P == C
    x = image(seed=9)
    on = build_segmentor(class_names=names, layers=[1]).layer_maps(x)
    off = build_segmentor(class_names=names, layers=[1],
                          itm_reweight=False).layer_maps(x)
    # without re-weighting each patch holds the softmax over prompts
    torch.testing.assert_close(off['maps'].sum(2), torch.ones(1, 1, 4, 4))
    # with it, each class map is scaled by its prompt's ITM score
    torch.testing.assert_close(
        on['maps'], off['maps'] * on['itm'][:, None, :, None, None])


@pytest.mark.parametrize('align_corners', [True, False])
def test_strip_argmax_equals_full_resize(align_corners):
    from mmseg_powerone.models.utils.postprocess import upsampled_argmax
    g = torch.Generator().manual_seed(0)
    for h, w, H, W in [(7, 9, 50, 61), (40, 30, 13, 77), (1, 1, 4, 4)]:
        x = torch.rand(21, h, w, generator=g)
        full = F.interpolate(x[None], (H, W), mode='bilinear',
                             align_corners=align_corners)[0].argmax(0)
        strips = upsampled_argmax(x, (H, W), align_corners,
                                  max_bytes=4 * 21 * W * 3)
        assert strips.shape == (1, H, W)
        assert torch.equal(strips[0], full)


def test_large_originals_take_the_strip_path(build_segmentor):
    from mmseg.structures import SegDataSample
    x = torch.randn(1, 3, 32, 48)
    meta = dict(ori_shape=(300, 410), img_shape=(32, 48), pad_shape=(32, 48),
                padding_size=[0, 0, 0, 0])
    plain = build_segmentor(layers=[0, 1]).predict(
        x, [SegDataSample(metainfo=meta)])[0]
    small = build_segmentor(layers=[0, 1], test_cfg=dict(
        mode='whole', max_logits_numel=1000))
    with pytest.warns(UserWarning, match='network resolution'):
        strip = small.predict(x, [SegDataSample(metainfo=meta)])[0]
    assert torch.equal(strip.pred_sem_seg.data, plain.pred_sem_seg.data)
    assert plain.seg_logits.data.shape == (3, 300, 410)
    assert strip.seg_logits.data.shape == (3, 32, 48)


def reference_gradcam(adapter, prompts, pixels, layers, head=None):
    """PnP-OVSS GradCAM from the Hugging Face model's own forward: hooks keep
    each cross-attention's post-softmax probabilities, autograd gives their
    gradient of the ITM match logit (first token), loops do the rest."""
    model, tok = adapter.model, adapter.tokenizer
    enc = tok(list(prompts.texts), padding=True, return_tensors='pt')
    ids, mask = enc['input_ids'], enc['attention_mask']
    P = ids.shape[0]
    probs = {}
    handles = [model.text_encoder.encoder.layer[l].crossattention.self
               .register_forward_hook(
                   lambda m, i, o, l=l: probs.__setitem__(l, o[1]))
               for l in layers]
    model.requires_grad_(True)
    try:
        out = model(input_ids=ids, attention_mask=mask,
                    pixel_values=pixels.expand(P, -1, -1, -1),
                    interpolate_pos_encoding=True, use_itm_head=True)
        grads = torch.autograd.grad(out.itm_score[:, 1].sum(),
                                    [probs[l] for l in layers])
    finally:
        model.requires_grad_(False)
        for h in handles:
            h.remove()
    maps = []
    for l, g in zip(layers, grads):
        rows = []
        for p in range(P):
            name = tok(prompts.names[p], add_special_tokens=False)['input_ids']
            row = ids[p].tolist()
            start = [i for i in range(1, len(row)) if row[i:i + len(name)] == name][0]
            cam = probs[l][p].detach() * g[p].clamp(min=0)  # [H, T, N]
            cam = cam.mean(0) if head is None else cam[head]
            rows.append(cam[start:start + len(name), 1:].mean(0))
        maps.append(torch.stack(rows))
    return torch.stack(maps)  # [L, P, N - 1]


@pytest.mark.parametrize('head', [None, 1])
def test_gradcam_maps_match_an_independent_autograd_computation(
        build_segmentor, head):
    seg = build_segmentor(map_mode='gradcam', gradcam_head=head,
                          class_names=['sky, grass', 'cat', 'dog puppy'],
                          multi_prompt=True)
    pixels = image(48, 64)
    out = seg.vlm(pixels, seg.prompt_tokens(), [0, 1, 2])  # built gradcam
    expected = reference_gradcam(seg.adapter, seg.prompts, pixels, [0, 1, 2],
                                 head)
    assert out['attn'].shape == (1, 3, 4, 12)
    torch.testing.assert_close(out['attn'][0], expected, atol=1e-5, rtol=1e-4)
    assert (out['attn'] >= 0).all() and out['attn'].abs().sum() > 0
    # the ITM scores are those of attention mode
    plain = seg.vlm(pixels, seg.prompt_tokens(), [0])
    torch.testing.assert_close(out['itm'], plain['itm'])


def test_gradcam_segments_without_grad_and_chunks_alike(build_segmentor):
    seg = build_segmentor(map_mode='gradcam', layers=[1, 2])
    x = image(32, 48)
    with torch.no_grad():
        whole = seg.encode_decode(x)
    seg.adapter.prompt_chunk = 1
    torch.testing.assert_close(seg.encode_decode(x), whole, atol=1e-6, rtol=0)
    assert not any(p.grad is not None for p in seg.parameters())
    pred = seg.predict(x)[0].pred_sem_seg.data
    assert pred.shape == (1, 32, 48)


def test_gradcam_is_training_free_only(build_segmentor):
    """Refused when the model is built, before the VLM loads."""
    with pytest.raises(ValueError, match="one-shot fine-tuning "
                       r"\(model.train_cfg\) uses map_mode='attention'"):
        build_segmentor(map_mode='gradcam', layers=[0, 1],
                        train_cfg=dict(tune_embeddings='all'))
    with pytest.raises(ValueError, match='gradcam_head=7'):
        build_segmentor(map_mode='gradcam', gradcam_head=7)
    with pytest.raises(ValueError, match='gradcam_head=0: needs'):
        build_segmentor(gradcam_head=0)


def test_layer_maps_can_keep_background_prompts_apart(build_segmentor):
    """InfoScore's marginal (docs/en/method.md): each background prompt its own
    entry, in prompt order, then classes 1..C-1; summing the background
    entries gives the grouped class 0."""
    seg = build_segmentor(class_names=['sky, grass, tree', 'cat', 'dog, hound'],
                          multi_prompt=True)
    x = image(seed=3)
    grouped = seg.layer_maps(x, [0, 2])['maps']  # [1, 2, 3, h, w]
    apart = seg.layer_maps(x, [0, 2], group_background=False)['maps']
    assert apart.shape[2] == 3 + 2
    assert seg.prompts.entry_names(group_background=False) == [
        'sky', 'grass', 'tree', 'cat', 'dog']
    assert seg.prompts.entry_names() == ['sky', 'cat', 'dog']
    torch.testing.assert_close(apart[:, :, :3].sum(2), grouped[:, :, 0])
    torch.testing.assert_close(apart[:, :, 3:], grouped[:, :, 1:])
    assert not torch.allclose(apart[:, :, 0], apart[:, :, 1])
    # no background class: nothing to keep apart
    seg = build_segmentor(class_names=['sky, tree', 'cat'], has_background=False,
                          multi_prompt=True)
    torch.testing.assert_close(
        seg.layer_maps(x, [1], group_background=False)['maps'],
        seg.layer_maps(x, [1])['maps'])


def test_vision_tokens_equal_the_hugging_face_eager_forward(build_segmentor):
    """The adapter's SDPA vision attention changes speed, not results."""
    from transformers import BlipForImageTextRetrieval
    adapter = build_segmentor().adapter
    hf = BlipForImageTextRetrieval.from_pretrained(
        adapter.pretrained, attn_implementation='eager').eval()
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours, grid = adapter.encode_image(x)
        ref = hf.vision_model(pixel_values=x,
                              interpolate_pos_encoding=True).last_hidden_state
    assert grid == (3, 4)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
