"""Faults, distributed training and determinism, for real, through the
tools: a one-shot training killed with SIGKILL resumes to the same weights;
an interrupted-and-resumed run, a second run and a 2-process run all end
where one uninterrupted run ends; predictions and InfoScore rankings repeat
bit for bit across processes. (Distributed testing and ranking: see
test_tools.py and test_infoscore.py.)"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import REPO, dist_env, final_weights, metrics_of, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def uninterrupted(oneshot_config, tmp_path_factory):
    """Work dir of one uninterrupted 4-epoch one-shot training."""
    work = str(tmp_path_factory.mktemp('straight'))
    run(['tools/train.py', oneshot_config, '--work-dir', work])
    return work


def assert_same_weights(a, b, atol=0.0):
    a, b = final_weights(a), final_weights(b)
    assert a.keys() == b.keys() and len(a) > 1
    for k in a:
        if k == '_extra_state':
            assert torch.equal(a[k], b[k])
        elif atol:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)
        else:
            assert torch.equal(a[k], b[k]), k


def test_sigkill_mid_training_then_resume(oneshot_config, uninterrupted,
                                          tmp_path):
    work = str(tmp_path / 'killed')
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py', oneshot_config, '--work-dir', work],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(work, 'epoch_2.pth')):
        assert proc.poll() is None, 'training ended before it could be killed'
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not os.path.exists(os.path.join(work, 'epoch_4.pth'))
    # every checkpoint on disk is complete (written to a temp file, renamed)
    for name in os.listdir(work):
        if name.endswith('.pth'):
            torch.load(os.path.join(work, name), weights_only=True)
    out = run(['tools/train.py', oneshot_config, '--work-dir', work,
               '--resume'])
    assert 'resumed epoch' in out.lower() or 'auto resumed' in out.lower(), \
        out[-2000:]
    assert_same_weights(uninterrupted, work)


def test_stop_and_resume_matches_one_run(oneshot_config, uninterrupted,
                                         tmp_path):
    work = str(tmp_path / 'resumed')
    run(['tools/train.py', oneshot_config, '--work-dir', work,
         '--cfg-options', 'train_cfg.max_epochs=2'])
    out = run(['tools/train.py', oneshot_config, '--work-dir', work,
               '--resume'])
    assert 'resumed epoch: 2' in out.lower() or 'Auto resumed' in out, \
        out[-2000:]
    assert_same_weights(uninterrupted, work)


def test_resume_skips_a_checkpoint_cut_short(oneshot_config, uninterrupted,
                                             tmp_path):
    """The newest checkpoint cut in half (a copy or a full disk): resume
    says so and continues from the newest complete one, ending where one
    uninterrupted run ends."""
    import shutil
    work = str(tmp_path / 'cut')
    shutil.copytree(uninterrupted, work)
    # as a run stopped after epoch 3 would leave it, then epoch_3 cut short
    os.remove(os.path.join(work, 'epoch_4.pth'))
    with open(os.path.join(work, 'last_checkpoint'), 'w') as f:
        f.write(os.path.join(work, 'epoch_3.pth'))
    path = os.path.join(work, 'epoch_3.pth')
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    os.utime(path)  # the newest file on disk, yet not whole
    out = run(['tools/train.py', oneshot_config, '--work-dir', work,
               '--resume'])
    assert 'which is damaged (cut short)' in out
    assert 'epoch_2.pth' in out and 'resumed epoch: 2' in out.lower(), \
        out[-2000:]
    assert_same_weights(uninterrupted, work)


def test_same_seed_same_tuned_weights(oneshot_config, uninterrupted, tmp_path):
    work = str(tmp_path / 'again')
    run(['tools/train.py', oneshot_config, '--work-dir', work])
    assert_same_weights(uninterrupted, work)


def test_two_process_training_matches_one(oneshot_config, uninterrupted,
                                          tmp_path):
    """2 ranks x 1 image per step = 1 rank x 2 accumulated images: the same
    updates up to float rounding, the same mIoU. The checkpoint holds only
    the tuned parameters under the names a single-process model loads."""
    work = str(tmp_path / 'dist')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', oneshot_config, '2', '--work-dir',
         work, '--cfg-options', 'optim_wrapper.accumulative_counts=1'],
        cwd=REPO, env=dist_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    from mmseg_powerone.models.utils.tuned_state import decode_info
    state = final_weights(work)
    tuned = decode_info(state['_extra_state'])['tuned_params']
    assert tuned and set(state) - {'_extra_state'} == {'vlm.' + n for n in tuned}
    assert_same_weights(uninterrupted, work, atol=1e-5)
    miou = []
    for w in (uninterrupted, work):
        run(['tools/test.py', oneshot_config, os.path.join(w, 'epoch_4.pth'),
             '--work-dir', os.path.join(w, 'test')])
        miou.append(metrics_of(os.path.join(w, 'test'))['mIoU'])
    assert miou[0] == pytest.approx(miou[1], abs=0.01)


def test_same_predictions_and_ranking_across_processes(tiny_config, tmp_path):
    outputs = []
    for i in range(2):
        pred_dir = tmp_path / f'pred{i}'
        run(['tools/test.py', tiny_config, '--work-dir',
             str(tmp_path / f'w{i}'), '--out', str(pred_dir)])
        run(['tools/rank_layers.py', tiny_config, '--with-labels', '--out',
             str(tmp_path / f'rank{i}'), '--cfg-options',
             'model.layers=infoscore'])
        with open(tmp_path / f'rank{i}' / 'infoscore.json') as f:
            ranking = json.load(f)
        labels = ranking['class_level']['labels']
        assert 0 < labels['infoscore'] and len(
            ranking['class_level']['l1_to_labels']) == len(ranking['layers'])
        files = sorted(p for p in pred_dir.rglob('*.png'))
        assert len(files) == 6
        outputs.append(([p.read_bytes() for p in files], ranking))
    assert outputs[0][0] == outputs[1][0]
    assert outputs[0][1] == outputs[1][1]
