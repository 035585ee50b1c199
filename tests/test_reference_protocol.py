"""The paper's reference protocol: its resize-and-pad geometry, IoU on the
padded grid, and, end to end on a tiny BLIP, a plain re-implementation of
the reference code's steps (written here from its published behaviour)
against our configs' pipeline, model and CRF; one-shot steps against the
reference's loss, gradients and weights."""
import math
import os

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import REPO, hf_blip_forward
from mmseg_powerone.datasets.transforms import (ResizeLongestEdgePad,
                                                longest_edge_size)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CLASSES = ['sky, grass, tree', 'cat', 'dog, puppy, hound']


# ------------------------------------------------------------ geometry
@pytest.mark.parametrize('hw,want', [
    ((375, 500), (384, 512)),    # VOC landscape: 375 * 1.024 = 384.0
    ((500, 375), (512, 384)),    # portrait
    ((333, 500), (336, 512)),    # 340.99 -> 340 -> 336
    ((512, 512), (512, 512)),
    ((1000, 999), (512, 504)),   # 511.49 -> 511 -> 504
    ((300, 451), (336, 512)),    # 340.58 -> 336
])
def test_longest_edge_size(hw, want):
    assert longest_edge_size(*hw, 512, 8) == want
    if hw[0] >= hw[1]:
        short = int(hw[1] * (512 / hw[0]))
    else:
        short = int(hw[0] * (512 / hw[1]))
    assert min(want) == short // 8 * 8  # truncated, then floored to 8


@pytest.mark.parametrize('h,w', [(45, 30), (30, 45), (37, 53), (64, 64)])
def test_resize_pad_image_and_label(h, w):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = rng.integers(0, 3, (h, w), dtype=np.uint8)
    out = ResizeLongestEdgePad(size=64, size_divisor=8)(dict(
        img=img, gt_seg_map=label, seg_fields=['gt_seg_map']))
    nh, nw = longest_edge_size(h, w, 64, 8)
    assert out['img'].shape == (64, 64, 3) and out['img'].dtype == np.float32
    assert out['img_shape'] == (64, 64)
    assert out['img_padding_size'] == [0, 64 - nw, 0, 64 - nh]
    want = cv2.resize(img.astype(np.float32), (nw, nh),
                      interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out['img'][:nh, :nw], want)
    assert (out['img'][nh:] == 0).all() and (out['img'][:, nw:] == 0).all()
    lab = out['gt_seg_map']
    np.testing.assert_array_equal(lab[:nh, :nw], cv2.resize(
        label, (nw, nh), interpolation=cv2.INTER_NEAREST))
    assert (lab[nh:] == 255).all() and (lab[:, nw:] == 255).all()
    assert set(np.unique(lab[:nh, :nw])) <= {0, 1, 2}


def test_resize_pad_refuses_bad_settings_and_mismatched_labels():
    with pytest.raises(ValueError, match='multiple of size_divisor'):
        ResizeLongestEdgePad(size=500, size_divisor=8)
    with pytest.raises(ValueError, match='same size'):
        ResizeLongestEdgePad(size=64)(dict(
            img=np.zeros((40, 30, 3), np.uint8),
            gt_seg_map=np.zeros((30, 40), np.uint8),
            seg_fields=['gt_seg_map']))
    with pytest.raises(ValueError, match='under 8 pixels'):
        ResizeLongestEdgePad(size=64)(dict(img=np.zeros((500, 4, 3))))


# ------------------------------------------------------------ IoU grid
def _sample(label, ori_shape, img_padding=None):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    s = SegDataSample(gt_sem_seg=PixelData(data=label[None]))
    meta = dict(ori_shape=ori_shape, img_shape=label.shape,
                padding_size=[0, 0, 0, 0])
    if img_padding is not None:
        meta['img_padding_size'] = img_padding
    s.set_metainfo(meta)
    return s


def test_input_grid_iou_by_hand(build_segmentor):
    """pred_grid='input': predictions stay on the 8 x 8 input grid and the
    padding (255 in the label) is ignored. Labels: class 1 in the 4 x 4
    top-left block, class 0 in the rest of the content (8 x 6), padding in
    the last two columns. Prediction: class 1 in the top-left 4 x 6 block
    (so also over 8 content pixels of class 0 and 8 padding pixels).
    IoU(1) = 16 / (16 + 8) = 2/3; IoU(0) = (48 - 16 - 8) / (48 - 16) =
    24/32; class 2 absent from both: NaN, left out of the mean."""
    from mmseg.evaluation import IoUMetric
    seg = build_segmentor(layers=[0], test_cfg=dict(mode='whole',
                                                    pred_grid='input'))
    label = torch.zeros(8, 8, dtype=torch.long)
    label[:4, :4] = 1
    label[:, 6:] = 255
    logits = torch.zeros(1, 3, 8, 8)
    logits[0, 0] = 1.0
    logits[0, 1, :4, :6] = 2.0
    out = seg.postprocess_result(logits, [_sample(label, (30, 20),
                                                  [0, 2, 0, 0])])
    assert out[0].pred_sem_seg.data.shape == (1, 8, 8)
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=('background', 'cat', 'dog'))
    metric.process([], [o.to_dict() for o in out])
    res = metric.compute_metrics(metric.results)
    assert res['mIoU'] == pytest.approx(100 * (2 / 3 + 24 / 32) / 2, abs=0.01)
    # a label that did not go through the same geometry is refused
    with pytest.raises(ValueError, match='LoadAnnotations before'):
        seg.postprocess_result(logits, [_sample(torch.zeros(30, 20,
                                                            dtype=torch.long),
                                                (30, 20))])


def test_original_grid_removes_pipeline_and_batch_padding(build_segmentor):
    """pred_grid='original' (default): the pipeline's padding and the data
    preprocessor's are both cut before resizing to the original size."""
    seg = build_segmentor(layers=[0])
    logits = torch.zeros(1, 2, 12, 10)
    logits[0, 1, :6, :4] = 1.0   # content: the top-left 6 x 4 block ...
    logits[0, 1, 6:, :] = 5.0    # ... pipeline padding below it (rows 6-7)
    logits[0, 1, :, 4:] = 5.0    # and right of it, batch padding beyond
    s = _sample(torch.zeros(12, 8, dtype=torch.long), (12, 8),
                [0, 4, 0, 2])
    s.set_metainfo(dict(padding_size=[0, 2, 0, 4]))
    out = seg.postprocess_result(logits, [s])
    pred = out[0].pred_sem_seg.data[0]
    assert pred.shape == (12, 8) and (pred == 1).all()
    # labels that went through the resize cannot be scored at the original
    # size
    s = _sample(torch.zeros(12, 10, dtype=torch.long), (12, 8),
                [0, 4, 0, 2])
    with pytest.raises(ValueError, match='LoadAnnotations after'):
        seg.postprocess_result(logits, [s])


def test_bad_pred_grid(build_segmentor):
    with pytest.raises(ValueError, match='pred_grid'):
        build_segmentor(test_cfg=dict(mode='whole', pred_grid='padded'))


# ------------------------------------------------------------ end to end
def reference_preprocess(path, label_path, size):
    """The reference's val transform: cv2 read, RGB, float32, longer side
    to ``size`` (others truncated, both floored to 8), bilinear, zeros
    padded to size x size, /255, ImageNet mean/std; the label nearest and
    padded with 255."""
    img = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR),
                       cv2.COLOR_BGR2RGB).astype(np.float32)
    label = cv2.imread(label_path, cv2.IMREAD_GRAYSCALE)
    h, w = img.shape[:2]
    if h >= w:
        nh, nw = size, int(w * (size * 1.0 / h))
    else:
        nh, nw = int(h * (size * 1.0 / w)), size
    nh, nw = nh // 8 * 8, nw // 8 * 8
    canvas = np.zeros((size, size, 3))
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    lab = np.ones((size, size)) * 255
    lab[:nh, :nw] = cv2.resize(label.astype(np.float32), (nw, nh),
                               interpolation=cv2.INTER_NEAREST)
    x = torch.from_numpy(canvas.transpose(2, 0, 1)).float().div(255)
    for t, m, s in zip(x, MEAN, STD):
        t.sub_(m).div_(s)
    return x[None], torch.from_numpy(lab).long()[None]


def reference_unary(model, tok, prompts, pixels, layers, size):
    """The reference's class probabilities, differentiable: pre-softmax
    cross-attention scores of the HF model's own forward (query/key hooks),
    max over heads, image [CLS] dropped, padding rows zeroed, summed over
    tokens; softmax over prompts times ITM (max over every position of the
    padded prompts); background prompts summed, others maxed; bilinear
    (align_corners) to size; mean over layers; normalised over classes.
    One image: pixels [1, 3, S, S]."""
    out, mask, scores = hf_blip_forward(model, tok, prompts.texts, pixels,
                                        layers)
    P = mask.shape[0]
    itm = model.itm_head(out.question_embeds).softmax(-1)[..., 1].max(1).values
    grid = pixels.shape[-1] // model.config.vision_config.patch_size
    C = prompts.num_classes
    ensemble = 0
    for l in layers:
        S = scores[l].max(1).values[:, :, 1:]  # [P, T, N - 1]
        A = (S * mask[:, :, None]).sum(1)  # [P, N]
        M = A.softmax(0) * itm[:, None]
        idx = list(prompts.class_index)
        cls = torch.stack([
            M[[p for p in range(P) if idx[p] == c]].sum(0) if c == 0 else
            M[[p for p in range(P) if idx[p] == c]].max(0).values
            for c in range(C)]).view(1, C, grid, grid)
        ensemble = ensemble + F.interpolate(cls, size=(size, size),
                                            mode='bilinear',
                                            align_corners=True)
    ensemble = ensemble / len(layers)
    return ensemble / ensemble.sum(1, keepdim=True).clamp_min(1e-12)


def reference_crf(unary, img, iters, filter_size=15, blur=4):
    """GaussCRF with DEFAULT_CRF_CONF, the reference's way: position / 3
    and normalised colour / 0.1 features, block-averaged (symmetric pad,
    padding not counted), Gaussians filled offset by offset by slicing,
    3 * pos + 10 * colour, messages by unfold, bilinear back up;
    log-softmax unary, first message of the unary, 0.8 / 0.2 update,
    softmax between iterations."""
    _, C, H, W = unary.shape
    span = filter_size // 2
    pad = (math.ceil(((blur - H % blur) % blur) / 2),
           math.ceil(((blur - W % blur) % blur) / 2))

    def pool(x):
        return F.avg_pool2d(x, blur, padding=pad, count_include_pad=False)

    mesh = torch.from_numpy(np.array(np.meshgrid(
        range(H), range(W), indexing='ij'), dtype=np.float32))[None]
    gauss = 0
    for feats, compat in ((mesh / 3, 3.0), (img * 10.0, 10.0)):
        f = pool(feats)
        h, w = f.shape[2:]
        g = torch.zeros(1, filter_size, filter_size, h, w)
        for dx in range(-span, span + 1):
            for dy in range(-span, span + 1):
                a = f[:, :, max(dx, 0):h + min(dx, 0), max(dy, 0):w + min(dy, 0)]
                b = f[:, :, max(-dx, 0):h + min(-dx, 0), max(-dy, 0):w + min(-dy, 0)]
                g[:, dx + span, dy + span, max(-dx, 0):h + min(-dx, 0),
                  max(-dy, 0):w + min(-dy, 0)] = torch.exp(
                      (-0.5 * (a - b) ** 2).sum(1))
        gauss = gauss + compat * g.view(1, 1, filter_size, filter_size, h, w)
    lg = unary.log_softmax(1)
    pred = lg
    for i in range(iters):
        x = pool(pred)
        cols = F.unfold(x, filter_size, 1, span).view(1, C, filter_size,
                                                      filter_size, h, w)
        msg = (gauss * cols).sum((2, 3))
        msg = F.interpolate(msg, scale_factor=blur, mode='bilinear',
                            align_corners=False)[:, :, pad[0]:pad[0] + H,
                                                 pad[1]:pad[1] + W]
        pred = 0.8 * lg + 0.2 * msg
        if i < iters - 1:
            pred = pred.softmax(1)
    return pred


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """Three 'photos' of odd shapes (landscape, portrait, sides not
    multiples of 8) with smooth content, and label maps with 255 holes, in
    mmseg's VOC layout."""
    root = tmp_path_factory.mktemp('voc')
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(root / sub)
    rng = np.random.default_rng(0)
    names = []
    for i, (h, w) in enumerate([(45, 70), (90, 53), (64, 64)]):
        small = rng.integers(0, 256, (5, 6, 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        label = np.zeros((h, w), np.uint8)
        label[h // 4:h // 2, w // 5:w // 2] = 1
        label[h // 2:, w // 2:] = 2
        label[h // 2 - 1:h // 2 + 1] = 255
        names.append(f'{i:03d}')
        cv2.imwrite(str(root / 'JPEGImages' / f'{names[-1]}.png'), img)
        cv2.imwrite(str(root / 'SegmentationClass' / f'{names[-1]}.png'), label)
    (root / 'ImageSets/Segmentation/val.txt').write_text('\n'.join(names))
    return str(root), names


def _reference_config(tiny_blip_dir, root, multi_prompt=False):
    """The paper-setting VOC21 config with the tiny BLIP, our tiny class
    list and a 64 px grid instead of 512."""
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(
        REPO, 'configs/powerone/powerone_blip-large_zeroshot_voc21.py'))
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert [t.type for t in pipeline] == ['LoadImageFromFile', 'LoadAnnotations',
                                          'ResizeLongestEdgePad', 'PackSegInputs']
    pipeline[2].size = 64
    cfg.merge_from_dict({
        'model.vlm.pretrained': tiny_blip_dir, 'model.class_names': CLASSES,
        'model.layers': [0, 2], 'model.multi_prompt': multi_prompt,
        'test_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.img_suffix': '.png',
        'test_dataloader.dataset.pipeline': pipeline})
    return cfg


@pytest.mark.parametrize('multi_prompt', [False, True])
def test_paper_config_agrees_with_the_reference_steps(tiny_blip_dir, photos,
                                                      multi_prompt):
    """Our VOC21 paper config (pipeline, model, CRF, IoU grid) against the
    reference's steps written out, on the same files: the same predictions
    on every pixel of the 64 x 64 grid, and the same IoU."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.evaluation import IoUMetric
    from mmseg.registry import DATASETS, MODELS
    from transformers import AutoTokenizer, BlipForImageTextRetrieval
    root, names = photos
    init_default_scope('mmseg')
    cfg = _reference_config(tiny_blip_dir, root, multi_prompt)
    model = MODELS.build(cfg.model).eval()
    assert model.crf.iters == 20 and model.itm_reduce == 'max'
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    hf = BlipForImageTextRetrieval.from_pretrained(
        tiny_blip_dir, attn_implementation='eager').eval()
    tok = AutoTokenizer.from_pretrained(tiny_blip_dir)
    ours, theirs = IoUMetric(iou_metrics=['mIoU']), IoUMetric(iou_metrics=['mIoU'])
    for m in (ours, theirs):
        m.dataset_meta = ds.metainfo
    for i, name in enumerate(names):
        with torch.no_grad():
            out = model.test_step(pseudo_collate([ds[i]]))[0]
            x, label = reference_preprocess(
                os.path.join(root, 'JPEGImages', f'{name}.png'),
                os.path.join(root, 'SegmentationClass', f'{name}.png'), 64)
            unary = reference_unary(hf, tok, model.prompts, x, [0, 2], 64)
            ref = reference_crf(unary, x, iters=20).argmax(1)
        pred = out.pred_sem_seg.data
        assert pred.shape == ref.shape == (1, 64, 64)
        assert (pred == ref).float().mean() == 1.0
        torch.testing.assert_close(out.gt_sem_seg.data, label)
        ours.process([], [out.to_dict()])
        theirs.process([], [dict(pred_sem_seg=dict(data=ref),
                                 gt_sem_seg=dict(data=label))])
    a = ours.compute_metrics(ours.results)['mIoU']
    b = theirs.compute_metrics(theirs.results)['mIoU']
    assert a == b


def _batch(model, ds, idx):
    from mmengine.dataset import pseudo_collate
    data = model.data_preprocessor(pseudo_collate([ds[i] for i in idx]), True)
    return data['inputs'], data['data_samples']


def test_one_shot_steps_match_the_reference(tiny_blip_dir, photos):
    """From identical weights and two supports in one batch: the reference's
    loss (NLL of log(max(p, 1e-12)), background weight 0.5, 255 ignored,
    one mean over both images' pixels), its gradients, and the weights
    after three AdamW steps (lr 2e-4, weight decay 0.05) on the word
    embeddings and the tuned layers' cross-attention."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS
    from transformers import AutoTokenizer, BlipForImageTextRetrieval
    root, names = photos
    init_default_scope('mmseg')
    cfg = _reference_config(tiny_blip_dir, root)
    cfg.model.crf = None
    cfg.model.train_cfg = dict(tune_embeddings='all', background_weight=0.5)
    model = MODELS.build(cfg.model)
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    inputs, samples = _batch(model, ds, [0, 1])
    labels = torch.cat([s.gt_sem_seg.data for s in samples])  # [2, 64, 64]
    model.train()
    model.start_tuning()
    tuned = dict(model.adapter.named_parameters())
    ours_params = [tuned[n] for n in model.tuned_params]
    opt = torch.optim.AdamW(ours_params, lr=2e-4, weight_decay=0.05)

    hf = BlipForImageTextRetrieval.from_pretrained(
        tiny_blip_dir, attn_implementation='eager').eval()
    tok = AutoTokenizer.from_pretrained(tiny_blip_dir)
    ref_named = {'model.' + n: p for n, p in hf.named_parameters()}
    for p in hf.parameters():
        p.requires_grad_(False)
    ref_params = [ref_named[n] for n in model.tuned_params]
    for p in ref_params:
        p.requires_grad_(True)
    ref_opt = torch.optim.AdamW(ref_params, lr=2e-4, weight_decay=0.05)
    start = [p.detach().clone() for p in ours_params]
    criterion = torch.nn.NLLLoss(ignore_index=255,
                                 weight=torch.tensor([0.5, 1.0, 1.0]))
    for step in range(3):
        opt.zero_grad()
        loss = model.loss(inputs, samples)['loss_nll']
        loss.backward()
        ref_opt.zero_grad()
        unary = torch.cat([reference_unary(hf, tok, model.prompts,
                                           inputs[n:n + 1], [0, 2], 64)
                           for n in range(2)])
        ref_loss = criterion(torch.log(unary.clamp_min(1e-12)), labels)
        ref_loss.backward()
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
        for a, b in zip(ours_params, ref_params):
            torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-4)
        opt.step()
        ref_opt.step()
    # Adam's normalised steps (6e-4 over three steps here) carry float
    # noise of near-zero gradients: agreement to 1e-5, 60 times below them
    moved = max(float((a - s).abs().max()) for a, s in zip(ours_params, start))
    assert moved > 5e-4
    for a, b in zip(ours_params, ref_params):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_one_shot_loss_floor_keeps_small_probabilities(build_segmentor):
    """log(max(p, 1e-12)) as the reference: a labelled pixel whose class
    has p = 1e-10 still gets its gradient (-w / (N p)); the old floor of
    1e-8 gave it none."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    seg = build_segmentor(layers=[0], train_cfg=dict(tune_embeddings='all'))
    probs = torch.full((1, 3, 2, 2), 1 / 3)
    probs[0, :, 0, 0] = torch.tensor([1 - 2e-10, 1e-10, 1e-10])
    probs.requires_grad_(True)
    seg.encode_decode = lambda inputs: probs
    seg._tuning_started = True
    label = torch.tensor([[[1, 0], [2, 255]]])
    sample = SegDataSample(gt_sem_seg=PixelData(data=label))
    loss = seg.loss(torch.zeros(1, 3, 2, 2), [sample])['loss_nll']
    # weights: background 0.5, classes 1; three labelled pixels
    total = 1.0 + 0.5 + 1.0
    want = -(math.log(1e-10) + 0.5 * math.log(1 / 3) + math.log(1 / 3)) / total
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert probs.grad[0, 1, 0, 0].item() == pytest.approx(-1 / (total * 1e-10),
                                                          rel=1e-4)


def test_paper_config_scored_at_the_original_size(tiny_blip_dir, photos):
    """docs/en/reference_differences.md's recipe: the reference geometry for
    the model, labels loaded after it, pred_grid='original': predictions
    come back at each photo's size and IoUMetric scores them."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.evaluation import IoUMetric
    from mmseg.registry import DATASETS, MODELS
    root, names = photos
    init_default_scope('mmseg')
    cfg = _reference_config(tiny_blip_dir, root)
    pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline[1], pipeline[2] = pipeline[2], pipeline[1]
    cfg.merge_from_dict({'model.test_cfg.pred_grid': 'original',
                         'test_dataloader.dataset.pipeline': pipeline})
    model = MODELS.build(cfg.model).eval()
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = ds.metainfo
    for i in range(len(names)):
        with torch.no_grad():
            out = model.test_step(pseudo_collate([ds[i]]))[0]
        h, w = out.metainfo['ori_shape']
        assert out.pred_sem_seg.data.shape == out.gt_sem_seg.data.shape == (1, h, w)
        metric.process([], [out.to_dict()])
    assert 0 <= metric.compute_metrics(metric.results)['mIoU'] <= 100
