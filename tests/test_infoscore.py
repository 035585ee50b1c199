"""InfoScore: the formula, streaming, and the hook inside a real Runner."""
import json
import os
import subprocess

import cv2
import numpy as np
import pytest
import torch

from mmseg_powerone.infoscore import (InfoScoreAccumulator, class_marginals,
                                      infoscore_batch)


def numpy_infoscore(m):
    """docs/en/method.md, written directly: m is [N, L, C]."""
    m = np.clip(m.astype(np.float64), 1e-8, None)
    H = lambda p: -(p * np.log(p)).sum(-1)  # noqa: E731
    hbar = H(m).mean(0)
    hdata = H(np.clip(m.mean(0), 1e-8, None))
    cov = (m.std(0) / m.mean(0)).sum(-1)  # population std
    return hdata / hbar * cov, hbar, hdata, cov


def random_marginals(n=37, L=5, C=6, seed=0):
    g = np.random.default_rng(seed)
    return torch.from_numpy(g.dirichlet(np.full(C, 0.3), size=(n, L)))


def test_accumulator_matches_direct_formula():
    m = random_marginals()
    res = infoscore_batch(m, topk=2)
    score, hbar, hdata, cov = numpy_infoscore(m.numpy())
    np.testing.assert_allclose(res['infoscore'], score, rtol=1e-10)
    np.testing.assert_allclose(res['mean_image_entropy'], hbar, rtol=1e-10)
    np.testing.assert_allclose(res['dataset_entropy'], hdata, rtol=1e-10)
    np.testing.assert_allclose(res['cov'], cov, rtol=1e-10)
    assert res['ranking'] == list(np.argsort(-score, kind='stable'))
    assert res['selected'] == sorted(res['ranking'][:2])
    assert res['num_images'] == 37


@pytest.mark.parametrize('chunks', [[37], [1] * 37, [5, 13, 1, 18], [36, 1]])
def test_streaming_in_any_chunking_gives_the_same_result(chunks):
    m = random_marginals()
    acc = InfoScoreAccumulator(5, 6)
    start = 0
    for c in chunks:
        acc.update(m[start:start + c])
        start += c
    ref = infoscore_batch(m)
    np.testing.assert_allclose(acc.finalize()['infoscore'], ref['infoscore'],
                               rtol=1e-10)


def test_merging_shards_equals_one_pass():
    m = random_marginals(n=20)
    a, b = InfoScoreAccumulator(5, 6), InfoScoreAccumulator(5, 6)
    a.update(m[::2])
    b.update(m[1::2])
    a.merge(b)
    np.testing.assert_allclose(a.finalize()['infoscore'],
                               infoscore_batch(m)['infoscore'], rtol=1e-10)


def test_a_committed_diverse_layer_outranks_a_uniform_one():
    g = np.random.default_rng(1)
    n, C = 50, 4
    good = np.full((n, C), 0.02)
    good[np.arange(n), g.integers(0, C, n)] = 0.94  # one class per image
    flat = np.full((n, C), 1 / C) + g.normal(0, 0.01, (n, C))
    flat /= flat.sum(1, keepdims=True)
    m = torch.from_numpy(np.stack([flat, good], axis=1))
    assert infoscore_batch(m, topk=1)['selected'] == [1]



def test_in_a_background_world_flooding_the_background_outranks_the_truth():
    """What InfoScore rewards, on class marginals shaped like the embedded
    world's labels (background ~86 %, one to three objects per image): a
    blurred version of the truth ranks below the truth, as it should, but a
    layer that hands most of the background to the present objects ranks
    above the truth itself (it spreads mass over more classes across the
    dataset). That is what the tiny VLMs' deep layers do (docs/en/embedded_world.md,
    "Honest reading"); the formula is as specified, so this is a documented
    limitation, not something to tune away."""
    g = np.random.default_rng(0)
    n, C = 100, 7
    truth = np.zeros((n, C))
    for i in range(n):
        objs = g.choice(np.arange(1, C), size=g.integers(1, 4), replace=False)
        truth[i, objs] = g.dirichlet(np.ones(len(objs))) * 0.14
        truth[i, 0] = 1 - truth[i, 1:].sum()
    blurred = 0.6 * truth + 0.4 / C
    flooded = truth.copy()
    flooded[:, 0] = 0.4
    flooded[:, 1:] = truth[:, 1:] / truth[:, 1:].sum(1, keepdims=True) * 0.6
    m = torch.from_numpy(np.stack([truth, blurred, flooded], axis=1))
    r = infoscore_batch(m, topk=1)
    assert r['ranking'] == [2, 0, 1]


def test_errors():
    with pytest.raises(ValueError, match='at least one image'):
        InfoScoreAccumulator(3, 2).finalize()
    acc = InfoScoreAccumulator(3, 2)
    acc.update(random_marginals(4, 3, 2))
    with pytest.raises(ValueError, match=r'topk=4: this VLM has 3 attention layers'):
        acc.finalize(topk=4)
    bad = random_marginals(4, 3, 2)
    bad[1, 2, 0] = float('nan')
    with pytest.raises(ValueError, match=r'layer\(s\) \[2\]'):
        InfoScoreAccumulator(3, 2).update(bad)


def test_class_marginals_are_distributions():
    maps = torch.rand(2, 3, 4, 5, 5)
    m = class_marginals(maps, (20, 20), align_corners=True)
    assert m.shape == (2, 3, 4)
    torch.testing.assert_close(m.sum(-1), torch.ones(2, 3, dtype=m.dtype))


def test_hook_rejects_bad_arguments():
    from mmseg_powerone import InfoScoreHook
    with pytest.raises(ValueError, match='num_images=0'):
        InfoScoreHook(num_images=0)


def test_model_topk_out_of_range(build_segmentor):
    with pytest.raises(ValueError, match=r'topk=5: this VLM has 3'):
        build_segmentor(layers='infoscore', topk=5)


def test_infoscore_model_without_hook_says_how_to_fix(build_segmentor):
    seg = build_segmentor(layers='infoscore')
    with pytest.raises(RuntimeError, match='InfoScoreHook'):
        seg.predict(torch.zeros(1, 3, 64, 64))


# ---------------------------------------------------------------- runner
def test_ranking_uses_single_prompt_mode_whatever_the_model_predicts_with(
        build_segmentor):
    """docs/en/method.md: InfoScore ranks in single-prompt mode (first template,
    objects by their first name, every background synonym), so a
    multi-prompt, multi-template model ranks its layers exactly as the
    single-prompt model of the same classes does."""
    from mmseg.structures import SegDataSample

    from mmseg_powerone.infoscore.analysis import rank_layers
    templates = ['Image of {}.', 'A photo of {}.']
    multi = build_segmentor(multi_prompt=True, prompt_templates=templates)
    single = build_segmentor()
    assert single.ranking_prompts is single.prompts
    assert multi.ranking_prompts.texts == single.prompts.texts == (
        'Image of sky.', 'Image of grass.', 'Image of tree.', 'Image of cat.',
        'Image of dog.')
    assert len(multi.prompts.texts) == 2 * 7
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 64, 64, generator=g)
    a = multi.layer_maps(x, [0, 2], group_background=False, single_prompt=True)
    b = single.layer_maps(x, [0, 2], group_background=False)
    torch.testing.assert_close(a['maps'], b['maps'])
    # the model's own prompts would give each background synonym once per
    # template (6 entries) and objects the max over their synonyms
    assert multi.layer_maps(x, [0, 2], group_background=False)[
        'maps'].shape[2] == 3 * 2 + 2

    def stack(batch):
        return dict(inputs=torch.stack([d['inputs'] for d in batch]),
                    data_samples=[d['data_samples'] for d in batch])

    class Loader:  # what iter_preprocessed reads of a dataloader
        batch_size = 2
        collate_fn = staticmethod(stack)
        dataset = [dict(inputs=torch.randn(3, 64, 64, generator=g),
                        data_samples=SegDataSample()) for _ in range(4)]

    r_multi = rank_layers(multi, Loader(), 4, 2)
    r_single = rank_layers(single, Loader(), 4, 2)
    np.testing.assert_allclose(r_multi['infoscore'], r_single['infoscore'],
                               rtol=1e-5)
    assert r_multi['marginal_entries'] == ['sky', 'grass', 'tree', 'cat', 'dog']
    # new class names: the ranking set follows them
    multi.set_class_names(['wall, floor', 'car, auto'])
    assert multi.ranking_prompts.texts == ('Image of wall.', 'Image of floor.',
                                           'Image of car.')



def test_compare_with_labels_puts_layers_beside_the_labels_own_infoscore(
        build_segmentor, monkeypatch):
    """Class-level InfoScore of the label maps (ignored pixels left out),
    and of each layer over the same images: a layer that reproduces the
    labels scores exactly as they do, at L1 distance 0."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmseg_powerone.infoscore.analysis import compare_with_labels
    from mmseg_powerone.infoscore import PIXEL_EPS
    seg = build_segmentor()
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, 64, 64, dtype=torch.long)
    labels[0, 8:40, 8:40] = 1
    labels[1, 20:60, 0:30] = 2
    labels[2, :, 32:] = 1
    labels[2, :16, :16] = 2
    onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2)
    # layer 0: the labels; layer 1: uniform; layer 2: wrong classes
    maps = torch.stack([onehot.double(),
                        torch.full_like(onehot, 1 / 3., dtype=torch.double),
                        onehot[:, [1, 1, 0]].double()], 1)  # [B, L, C, H, W]
    calls = iter(range(2))

    def layer_maps(inputs, layers, single_prompt=False, **kw):
        assert single_prompt and list(layers) == [0, 1, 2]
        i = 2 * next(calls)
        return dict(maps=maps[i:i + 2].float())

    monkeypatch.setattr(seg, 'layer_maps', layer_maps)

    def stack(batch):
        return dict(inputs=torch.stack([d['inputs'] for d in batch]),
                    data_samples=[d['data_samples'] for d in batch])

    def loader_of(label_maps):
        class Loader:
            batch_size = 2
            collate_fn = staticmethod(stack)
            dataset = [dict(inputs=torch.randn(3, 64, 64, generator=g),
                            data_samples=SegDataSample(gt_sem_seg=PixelData(
                                data=lab[None].clone())))
                       for lab in label_maps]
        return Loader()

    r = compare_with_labels(seg, loader_of(labels), 4)
    direct = torch.stack([torch.bincount(l.flatten(), minlength=3).double()
                          / l.numel() for l in labels])
    direct = direct + PIXEL_EPS * (1 - direct)  # clamped one-hot maps
    want = infoscore_batch(direct[:, None], 1)
    for key in ('infoscore', 'mean_image_entropy', 'dataset_entropy', 'cov'):
        assert r['labels'][key] == pytest.approx(want[key][0], rel=1e-9)
        assert r[key][0] == pytest.approx(want[key][0], rel=1e-6)
    assert r['l1_to_labels'][0] == pytest.approx(0, abs=1e-6)
    assert r['mean_image_entropy'][1] == pytest.approx(np.log(3), rel=1e-6)
    assert r['l1_to_labels'][2] > r['l1_to_labels'][1] > 0.1
    np.testing.assert_allclose(r['labels']['mean_marginal'],
                               direct.mean(0).numpy(), rtol=1e-9)
    assert r['num_images'] == 4 and r['classes'] == seg.class_names

    # ignored pixels are not part of the labels' marginal
    ignored = labels.clone()
    ignored[0, :32] = 255
    calls = iter(range(2))
    r = compare_with_labels(seg, loader_of(ignored), 4)
    kept = ignored[0][ignored[0] != 255]
    first = (kept == 1).double().mean()
    first = first + PIXEL_EPS * (1 - first)
    assert r['labels']['mean_marginal'][1] == pytest.approx(float(
        (first + direct[1:, 1].sum()) / 4))
    # labels the model has no class for
    wrong = labels.clone()
    wrong[3, 0, 0] = 7
    calls = iter(range(2))
    with pytest.raises(ValueError, match='labels outside 0..2'):
        compare_with_labels(seg, loader_of(wrong), 4)

from helpers import REPO, dist_env, metrics_of, run  # noqa: E402


def infoscore_config(tiny_config, tmp_path, classes="['sky, grass', 'cat', 'dog']"):
    path = tmp_path / 'infoscore_cfg.py'
    path.write_text(f"""
_base_ = [{tiny_config!r}]
model = dict(layers='infoscore', topk=2, class_names={classes})
custom_hooks = [dict(type='InfoScoreHook', num_images=5)]
""")
    return str(path)


def test_hook_sets_layers_in_runner_test_loop(tiny_config, tmp_path):
    from mmengine.config import Config
    from mmseg_powerone.engine import build_runner
    cfg = Config.fromfile(infoscore_config(tiny_config, tmp_path))
    cfg.work_dir = str(tmp_path / 'work')
    runner = build_runner(cfg)
    metrics = runner.test()
    model = runner.model
    assert 'mIoU' in metrics
    with open(tmp_path / 'work' / 'infoscore.json') as f:
        saved = json.load(f)
    for key in ('layers', 'infoscore', 'mean_image_entropy', 'dataset_entropy',
                'cov', 'ranking', 'selected', 'num_images'):
        assert key in saved
    assert saved['num_images'] == 5
    assert model.layers == saved['selected'] and len(model.layers) == 2
    assert (tmp_path / 'work' / 'infoscore.png').stat().st_size > 1000
    # The JSON agrees with a recomputation straight from layer_maps, whose
    # marginal keeps the background prompts apart (docs/en/method.md, as the paper's code).
    assert saved['marginal_entries'] == ['sky', 'grass', 'cat', 'dog']
    acc = InfoScoreAccumulator(3, 4)
    ds = runner.test_dataloader.dataset
    with torch.no_grad():
        for i in range(5):
            data = model.data_preprocessor(
                runner.test_dataloader.collate_fn([ds[i]]), False)
            maps = model.layer_maps(data['inputs'], [0, 1, 2],
                                    group_background=False)['maps']
            acc.update(class_marginals(maps, data['inputs'].shape[2:], True))
    ref = acc.finalize(2)
    np.testing.assert_allclose(saved['infoscore'], ref['infoscore'], rtol=1e-6)
    assert saved['ranking'] == ref['ranking']
    # The chosen layers travel in checkpoint meta.
    ckpt = {'meta': {}}
    hook = [h for h in runner.hooks if type(h).__name__ == 'InfoScoreHook'][0]
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt['meta']['infoscore']['selected'] == saved['selected']
    model.layers = None
    hook.after_load_checkpoint(runner, ckpt)
    assert model.layers == saved['selected']


@pytest.mark.slow
def test_cache_hit_and_miss(tiny_config, tmp_path):
    work = str(tmp_path / 'work')
    cfg = infoscore_config(tiny_config, tmp_path)
    out1 = run(['tools/test.py', cfg, '--work-dir', work])
    assert 'reusing the ranking' not in out1
    out2 = run(['tools/test.py', cfg, '--work-dir', work])
    assert 'InfoScore: reusing the ranking of 5 images' in out2
    cfg2 = infoscore_config(tiny_config, tmp_path / '..',
                            classes="['sky, tree', 'cat', 'dog']")
    out3 = run(['tools/test.py', cfg2, '--work-dir', work])
    assert 'reusing the ranking' not in out3
    # another input resolution, same images: another ranking
    out4 = run(['tools/test.py', cfg, '--work-dir', work, '--cfg-options',
                'test_dataloader.dataset.pipeline.1.scale=[48,48]'])
    assert 'reusing the ranking' not in out4
    # another input normalisation (the model's data_preprocessor): another one
    out5 = run(['tools/test.py', cfg, '--work-dir', work, '--cfg-options',
                'model.data_preprocessor.mean=[0,0,0]'])
    assert 'reusing the ranking' not in out5


def test_cache_key_follows_image_content(tiny_config, tiny_dataset, tmp_path):
    """Images regenerated under the same names (even with their old
    modification times) are another dataset: another cache key."""
    import shutil
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmseg.registry import MODELS
    from mmseg_powerone.engine.hooks.infoscore_hook import InfoScoreHook
    init_default_scope('mmseg')
    root = tmp_path / 'data'
    shutil.copytree(tiny_dataset, root)
    cfg = Config.fromfile(tiny_config)
    cfg.test_dataloader.dataset.data_root = str(root)
    model = MODELS.build(cfg.model)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    hook = InfoScoreHook(num_images=5)
    before = hook._cache_key(model, loader, 2)
    assert hook._cache_key(model, loader, 2) == before
    img = root / 'img' / '000.png'
    st = os.stat(img)
    pixels = cv2.imread(str(img))
    cv2.imwrite(str(img), 255 - pixels)  # same name, other content
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hook._cache_key(model, loader, 2) != before


@pytest.mark.parametrize('damage', [b'{"layers": [0, 1], "infos', b'[1, 2]',
                                    b'\xff\xfe'])
@pytest.mark.slow
def test_damaged_cache_is_reported_and_recomputed(tiny_config, tmp_path,
                                                  damage):
    work = tmp_path / 'work'
    cfg = infoscore_config(tiny_config, tmp_path)
    run(['tools/test.py', cfg, '--work-dir', str(work)])
    cached = list((work / 'infoscore_cache').glob('infoscore-*.json'))
    assert len(cached) == 1
    good = json.loads(cached[0].read_text())
    cached[0].write_bytes(damage)
    out = run(['tools/test.py', cfg, '--work-dir', str(work)])
    assert f'the cache file {cached[0]}' in out
    assert 'reusing the ranking' not in out
    assert json.loads(cached[0].read_text())['ranking'] == good['ranking']


@pytest.mark.slow
def test_two_process_ranking_equals_one_process(tiny_config, tmp_path):
    cfg = infoscore_config(tiny_config, tmp_path)
    env = dist_env()
    two, one = tmp_path / 'two', tmp_path / 'one'
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', cfg, 'none', '2', '--work-dir', str(two),
         '--cfg-options', 'custom_hooks.0.cache=False'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    run(['tools/test.py', cfg, '--work-dir', str(one), '--cfg-options',
         'custom_hooks.0.cache=False'])
    a = json.loads((two / 'infoscore.json').read_text())
    b = json.loads((one / 'infoscore.json').read_text())
    assert a['ranking'] == b['ranking'] and a['num_images'] == b['num_images']
    np.testing.assert_allclose(a['infoscore'], b['infoscore'], rtol=1e-6)
    assert metrics_of(str(two))['mIoU'] == metrics_of(str(one))['mIoU']


def test_spearman_rank_correlation():
    from mmseg_powerone.evaluation import spearman
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [9, 5, 2, 0]) == pytest.approx(-1.0)
    # ranks (3,1,2) vs (2,1,3): 1 - 6*(1+0+1)/(3*8) = 0.5
    assert spearman([3, 1, 2], [0.2, 0.1, 0.5]) == pytest.approx(0.5)
    # ties share their average rank
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)
