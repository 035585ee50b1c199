"""The method through mmengine's Runner: our tools/test.py and mmseg's stock
tools/test.py (shipped in the mmseg wheel) on a few generated images."""
import glob
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO

CLASSES = ('background', 'cat', 'dog')


@pytest.fixture(scope='module')
def tiny_dataset(tmp_path_factory):
    """Six 64x64 images in mmseg layout, including grayscale, RGBA and 16-bit
    files, which must go through the pipeline as RGB."""
    root = tmp_path_factory.mktemp('tiny_data')
    os.makedirs(root / 'img')
    os.makedirs(root / 'ann')
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        label = np.zeros((64, 64), np.uint8)
        label[8:40, 8:40] = 1 + i % 2
        if i == 1:
            img = img[:, :, 0]  # grayscale
        elif i == 2:
            img = np.dstack([img, np.full((64, 64), 200, np.uint8)])  # RGBA
        elif i == 3:
            img = img.astype(np.uint16) * 257  # 16-bit
        cv2.imwrite(str(root / 'img' / f'{i:03d}.png'), img)
        cv2.imwrite(str(root / 'ann' / f'{i:03d}.png'), label)
    return str(root)


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory, tiny_dataset, tiny_blip_dir):
    path = tmp_path_factory.mktemp('cfg') / 'powerone_blip-tiny_zeroshot_tiny.py'
    path.write_text(f"""
_base_ = [{os.path.join(REPO, 'configs/_base_/default_runtime.py')!r}]
model = dict(
    type='VLMAttentionSegmentor',
    data_preprocessor=dict(type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    vlm=dict(type='BLIPAdapter', pretrained={tiny_blip_dir!r}),
    class_names=['sky, grass', 'cat', 'dog'],
    layers=[0, 2])
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')]
test_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='BaseSegDataset', data_root={tiny_dataset!r},
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        img_suffix='.png', seg_map_suffix='.png',
        metainfo=dict(classes={CLASSES!r},
                      palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0]]),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
""")
    return str(path)


def run(args, cwd=REPO):
    proc = subprocess.run([sys.executable] + args, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def metrics_of(work_dir):
    files = glob.glob(os.path.join(work_dir, '*', '*.json'))
    assert files, f'no metrics json under {work_dir}'
    with open(sorted(files)[-1]) as f:
        return json.load(f)


def test_our_test_tool_prints_miou_table(tiny_config, tmp_path):
    work = str(tmp_path / 'work')
    out = run(['tools/test.py', tiny_config, '--work-dir', work,
               '--out', str(tmp_path / 'preds')])
    assert 'per class results' in out
    for name in CLASSES:
        assert re.search(rf'\|\s+{name}\s+\|', out), name
    m = metrics_of(work)
    assert 0.0 <= m['mIoU'] <= 100.0
    preds = sorted(os.listdir(tmp_path / 'preds'))
    assert len(preds) == 6  # every image, grayscale/RGBA/16-bit included
    pred = cv2.imread(str(tmp_path / 'preds' / preds[0]), cv2.IMREAD_UNCHANGED)
    assert pred.shape == (64, 64) and pred.max() < len(CLASSES)


def test_stock_mmseg_test_tool_with_exported_checkpoint(tiny_config, tmp_path):
    import mmseg
    stock = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools',
                         'test.py')
    assert os.path.isfile(stock)
    ckpt = str(tmp_path / 'training_free.pth')
    run(['tools/export_checkpoint.py', tiny_config, ckpt])
    assert os.path.getsize(ckpt) < 100_000  # no VLM weights inside
    # Run from another directory: the plugin loads through custom_imports.
    ours_work, stock_work = str(tmp_path / 'ours'), str(tmp_path / 'stock')
    out = run([stock, tiny_config, ckpt, '--work-dir', stock_work],
              cwd=str(tmp_path))
    assert 'per class results' in out
    assert 'missing keys' not in out
    run(['tools/test.py', tiny_config, '--work-dir', ours_work])
    assert metrics_of(stock_work)['mIoU'] == metrics_of(ours_work)['mIoU']


def test_dist_test_two_processes_match_one(tiny_config, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port),
               PATH=os.path.dirname(sys.executable) + os.pathsep +
               os.environ.get('PATH', ''))
    two, one = str(tmp_path / 'two'), str(tmp_path / 'one')
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', tiny_config, 'none', '2',
         '--work-dir', two], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    run(['tools/test.py', tiny_config, '--work-dir', one])
    assert metrics_of(two)['mIoU'] == metrics_of(one)['mIoU']
