"""One-shot fine-tuning: what trains, the loss, tuned-only checkpoints,
mismatch errors and the tools that run it (resume, 2 processes:
test_reliability.py)."""
import glob
import json
import os

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample


from helpers import REPO, final_weights, run

TRAIN = dict(tune_embeddings='all', background_weight=0.5)


def batch(seed=0, n=2):
    """Preprocessed images [n, 3, 32, 32] with labels: class 1 or 2 in a
    block, background around it, a few ignored pixels."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, 32, 32, generator=g)
    samples = []
    for i in range(n):
        label = torch.zeros(1, 32, 32, dtype=torch.long)
        label[:, 4:20, 6:22] = 1 + i % 2
        label[:, 0, :4] = 255
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label)))
    return inputs, samples


def train_steps(model, steps, lr=1e-2):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    inputs, samples = batch()
    losses = []
    for _ in range(steps):
        loss = model.loss(inputs, samples)['loss_nll']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize('embeddings', ['all', 'class_tokens'])
def test_only_the_tunable_parameters_change(build_segmentor, embeddings):
    model = build_segmentor(layers=[0, 2], train_cfg=dict(
        TRAIN, tune_embeddings=embeddings))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, 3)
    tuned = {'vlm.' + n for n in model.tuned_params}
    emb = 'vlm.model.text_encoder.embeddings.word_embeddings.weight'
    assert (emb in tuned) == (embeddings == 'all')
    assert ('vlm.token_offsets' in tuned) == (embeddings == 'class_tokens')
    layers = {n.split('.layer.')[1].split('.')[0] for n in tuned if '.layer.' in n}
    assert layers == {'0', '2'}
    assert all('crossattention' in n for n in tuned if '.layer.' in n)
    for name, p in model.named_parameters():
        if name in tuned:
            assert not torch.equal(p, before[name]), name
        else:
            assert torch.equal(p, before[name]), name


def test_the_loss_falls(build_segmentor):
    model = build_segmentor(layers=[0, 2], train_cfg=TRAIN)
    losses = train_steps(model, 15)
    assert losses[-1] < 0.7 * losses[0], losses


def test_background_weight_and_ignore_index_enter_the_loss(build_segmentor):
    inputs, samples = batch()
    model = build_segmentor(layers=[0, 2], train_cfg=TRAIN)
    half = float(model.loss(inputs, samples)['loss_nll'])
    model.train_cfg.background_weight = 1.0
    full = float(model.loss(inputs, samples)['loss_nll'])
    assert half != pytest.approx(full)
    for s in samples:  # ignoring every pixel but one changes the loss
        s.gt_sem_seg.data[:, 1:] = 255
    assert float(model.loss(inputs, samples)['loss_nll']) != pytest.approx(full)


def test_background_weight_needs_a_background_class(build_segmentor):
    inputs, samples = batch()
    model = build_segmentor(layers=[0, 2], train_cfg=TRAIN,
                            has_background=False)
    half = float(model.loss(inputs, samples)['loss_nll'])
    model.train_cfg.background_weight = 1.0
    assert float(model.loss(inputs, samples)['loss_nll']) == \
        pytest.approx(half, abs=1e-7)


def test_training_free_model_has_no_loss(build_segmentor):
    inputs, samples = batch()
    with pytest.raises(RuntimeError, match='train_cfg'):
        build_segmentor(layers=[0])(inputs, samples, mode='loss')


def test_bad_train_cfg_is_refused(build_segmentor):
    with pytest.raises(ValueError, match='tune_embeddings'):
        build_segmentor(train_cfg=dict(tune_embeddings='some'))
    with pytest.raises(ValueError, match='unknown keys'):
        build_segmentor(train_cfg=dict(lr=1))


def tuned_model(build_segmentor, **kwargs):
    model = build_segmentor(layers=[0, 2], train_cfg=TRAIN, **kwargs)
    train_steps(model, 3)
    return model.eval()


def test_checkpoint_holds_only_tuned_parameters_and_reloads(build_segmentor):
    model = tuned_model(build_segmentor)
    state = model.state_dict()
    tensors = {k: v for k, v in state.items() if k != '_extra_state'}
    assert set(tensors) == {'vlm.' + n for n in model.tuned_params}
    full = sum(p.numel() for p in model.parameters())
    assert sum(v.numel() for v in tensors.values()) < 0.25 * full
    fresh = build_segmentor(layers=[0, 2], train_cfg=TRAIN)
    inputs, _ = batch(seed=1)
    assert not torch.allclose(fresh.encode_decode(inputs).detach(),
                              model.encode_decode(inputs).detach())
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh.encode_decode(inputs),
                           model.encode_decode(inputs))


def test_tuned_layers_come_with_the_checkpoint(build_segmentor):
    state = tuned_model(build_segmentor).state_dict()
    infoscore = build_segmentor(layers='infoscore', train_cfg=TRAIN)
    infoscore.load_state_dict(state)
    assert infoscore.layers == [0, 2]
    other = build_segmentor(layers=[1, 2], train_cfg=TRAIN)
    with pytest.raises(ValueError, match=r'tuned on layers \[0, 2\]'):
        other.load_state_dict(state)


def test_class_token_checkpoint_needs_the_same_tuning_mode(build_segmentor):
    model = build_segmentor(layers=[0, 2], train_cfg=dict(
        TRAIN, tune_embeddings='class_tokens'))
    train_steps(model, 2)
    with pytest.raises(ValueError, match="tune_embeddings='class_tokens'"):
        build_segmentor(layers=[0, 2]).load_state_dict(model.state_dict())


# ---------------------------------------------------------------- tools
@pytest.mark.slow
def test_oneshot_eval_reports_mean_and_std(oneshot_config, tmp_path):
    work = str(tmp_path / 'eval')
    out = run(['tools/oneshot_eval.py', oneshot_config, '--draws', '2',
               '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1'])
    assert 'mean ± std' in out
    with open(os.path.join(work, 'oneshot_eval.json')) as f:
        result = json.load(f)
    assert [d['seed'] for d in result['draws']] == [0, 1]
    values = [d['mIoU'] for d in result['draws']]
    assert result['summary']['mIoU']['mean'] == pytest.approx(
        sum(values) / 2)
    assert os.path.isfile(os.path.join(work, 'oneshot_eval.md'))
    # each draw was tested through tools/test.py on its own checkpoint
    assert len(glob.glob(os.path.join(work, 'draw_*', 'test', '*', '*.json'))) == 2


@pytest.mark.slow
def test_oneshot_eval_parallel_forked_draws_equal_fresh_sequential_ones(
        oneshot_config, tmp_path):
    """Draws run as forks of a preloaded process by default, and with --jobs
    side by side: with the same --threads, the weights and metrics equal
    those of fresh interpreters one after another. Later draws reuse the
    InfoScore ranking of the first (same weights and images)."""
    cfg = tmp_path / 'infoscore_oneshot.py'
    cfg.write_text(f"_base_ = [{oneshot_config!r}]\n"
                   "model = dict(layers='infoscore', topk=2)\n"
                   "custom_hooks = [dict(type='InfoScoreHook', num_images=4,"
                   " dataloader='test')]\n")
    forked, fresh = tmp_path / 'forked', tmp_path / 'fresh'
    opts = ['--draws', '2', '--threads', '1', '--cfg-options',
            'train_cfg.max_epochs=1']
    run(['tools/oneshot_eval.py', str(cfg), '--work-dir', str(forked),
         '--jobs', '2'] + opts)
    run(['tools/oneshot_eval.py', str(cfg), '--work-dir', str(fresh),
         '--fresh-processes'] + opts)
    a = json.loads((forked / 'oneshot_eval.json').read_text())
    b = json.loads((fresh / 'oneshot_eval.json').read_text())
    assert [d['seed'] for d in a['draws']] == [0, 1]
    for da, db in zip(a['draws'], b['draws']):
        assert (da['mIoU'], da['layers']) == (db['mIoU'], db['layers'])
    for draw in ('draw_0', 'draw_1'):
        wa, wb = (final_weights(str(w / draw)) for w in (forked, fresh))
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), draw
    # the sequential run: draw 1 took draw 0's ranking from the cache
    logs = [open(p).read() for p in sorted(glob.glob(
        str(fresh / 'draw_*' / '2*' / '*.log')))]
    assert len(logs) == 2
    assert 'InfoScore: reusing the ranking' not in logs[0]
    assert 'InfoScore: reusing the ranking' in logs[1]


@pytest.mark.slow
@pytest.mark.parametrize('jobs', ['1', '2'])
def test_oneshot_eval_forked_failure_shows_the_tool_output(oneshot_config,
                                                           tmp_path, jobs):
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, 'tools/oneshot_eval.py', oneshot_config, '--draws',
         '2', '--jobs', jobs, '--work-dir', str(tmp_path), '--cfg-options',
         'model.layers=[0,99]'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'training draw 0 failed' in proc.stderr
    assert 'Layer index 99 is out of range' in proc.stderr
    assert not os.path.exists(os.path.join(tmp_path, 'oneshot_eval.json'))


@pytest.mark.slow
def test_oneshot_eval_refuses_a_training_free_config(tiny_config, tmp_path):
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, 'tools/oneshot_eval.py', tiny_config, '--work-dir',
         str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and 'OneShotDataset' in proc.stderr
    assert not os.path.exists(os.path.join(tmp_path, 'oneshot_eval.json'))


@pytest.mark.slow
def test_inferencer_uses_a_tuned_checkpoint(oneshot_config, tiny_dataset,
                                            tmp_path):
    from mmseg_powerone.apis import PowerOneInferencer
    work = str(tmp_path / 'w')
    run(['tools/train.py', oneshot_config, '--work-dir', work,
         '--cfg-options', 'train_cfg.max_epochs=1'])
    ckpt = os.path.join(work, 'epoch_1.pth')
    inferencer = PowerOneInferencer(oneshot_config, ckpt, device='cpu')
    state = torch.load(ckpt, weights_only=True)['state_dict']
    emb = 'model.text_encoder.embeddings.word_embeddings.weight'
    assert torch.equal(inferencer.model.adapter.state_dict()[emb],
                       state['vlm.' + emb])
    assert inferencer.model.layers == [0, 2]
    out = inferencer(os.path.join(tiny_dataset, 'img', '000.png'),
                     classes=['cat', 'dog'])
    assert out['predictions'].shape == (64, 64)
