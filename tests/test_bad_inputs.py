"""The bad-input battery, one test per case, read as a list: each input is
either refused with an error that names the problem and the fix, or handled
correctly; nothing is left half-written.

Class names: empty, duplicate, blank, over-long, non-UTF-8.
Images: grayscale, RGBA, 16-bit, corrupt, 1x1, 8k x 8k.
Labels: values outside the class range (test, one-shot scan, loss).
Checkpoints: missing keys, unexpected keys, another VLM, another class list.
Settings: topk > number of layers, InfoScore on zero images, a class without
a valid one-shot support.
Writes: checkpoints and JSON are renamed into place only when complete.
"""
import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

from helpers import REPO
from test_oneshot_dataset import make_split
from test_oneshot_training import TRAIN, tuned_model


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)


@pytest.fixture(scope='module')
def segment(tiny_config):
    """Run one image file (and label map) through mmseg's loading transforms
    and the tiny model's ``test_step``; returns the SegDataSample."""
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(tiny_config).model).eval()

    def run_one(img_path, seg_path=None):
        steps = [dict(type='LoadImageFromFile')]
        if seg_path:
            steps.append(dict(type='LoadAnnotations'))
        steps.append(dict(type='PackSegInputs'))
        data = Compose(steps)(dict(img_path=str(img_path),
                                   seg_map_path=seg_path and str(seg_path),
                                   reduce_zero_label=False, seg_fields=[]))
        with torch.no_grad():
            return model.test_step(pseudo_collate([data]))[0]

    return run_one


def _pred(sample):
    return sample.pred_sem_seg.data[0]


# ---------------------------------------------------------------- class names
def test_empty_class_list(build_segmentor):
    with pytest.raises(ValueError, match='`class_names` is empty. Give a class-name file'):
        build_segmentor(class_names=[])


def test_duplicate_class_name(build_segmentor):
    with pytest.raises(ValueError, match="duplicate class name 'cat'"):
        build_segmentor(class_names=['sky', 'cat', 'dog, cat'])


def test_blank_class_name(build_segmentor):
    with pytest.raises(ValueError, match=r'class_names\[2\] is blank'):
        build_segmentor(class_names=['sky', 'cat', '   '])


def test_over_long_class_name(build_segmentor):
    # beyond the text encoder's maximum length: refused, never truncated
    seg = build_segmentor(class_names=['sky', 'cat ' * 600])
    with pytest.raises(ValueError, match=r'tokens long, more than the text '
                       r'encoder takes \(\d+\)\. Shorten that class name'):
        seg.predict(torch.zeros(1, 3, 32, 32))


def test_non_utf8_class_file(build_segmentor, tmp_path):
    path = tmp_path / 'classes.txt'
    path.write_bytes(b'sky\ncat\n\xff\xfedog\n')
    with pytest.raises(ValueError, match=f'{path}.*line 3: not valid UTF-8'):
        build_segmentor(class_names=str(path))


# -------------------------------------------------------------------- images
@pytest.mark.parametrize('kind', ['grayscale', 'rgba', '16-bit'])
def test_image_formats_segment_like_their_rgb_version(segment, tmp_path, kind):
    rgb = _image(40, 56)
    if kind == 'grayscale':
        rgb = np.repeat(rgb[:, :, :1], 3, axis=2)
        odd = rgb[:, :, 0]
    elif kind == 'rgba':
        odd = np.dstack([rgb, np.full((40, 56), 77, np.uint8)])
    else:
        odd = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / 'rgb.png'), rgb)
    cv2.imwrite(str(tmp_path / 'odd.png'), odd)
    assert cv2.imread(str(tmp_path / 'odd.png'), cv2.IMREAD_UNCHANGED).shape \
        == odd.shape
    expected = _pred(segment(tmp_path / 'rgb.png'))
    got = _pred(segment(tmp_path / 'odd.png'))
    assert got.shape == (40, 56)
    assert torch.equal(got, expected)


def test_corrupt_image_names_the_file(segment, tmp_path):
    path = tmp_path / 'broken.png'
    cv2.imwrite(str(path), _image(32, 32))
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(Exception, match='broken.png'):
        segment(path)


def test_one_pixel_image(segment, tmp_path):
    cv2.imwrite(str(tmp_path / 'dot.png'), _image(1, 1))
    sample = segment(tmp_path / 'dot.png')
    assert _pred(sample).shape == (1, 1)
    assert 0 <= int(_pred(sample)) < 3


# The 8k x 8k case runs in a subprocess so that its peak memory can be read.
LARGE_IMAGE_SCRIPT = textwrap.dedent('''
    import resource, sys, warnings
    import cv2, numpy as np, torch
    import mmseg_powerone  # noqa: F401
    from mmengine.config import Config
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg_path, img_path, classes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    init_default_scope('mmseg')
    cfg = Config.fromfile(cfg_path)
    cfg.model.class_names = ['sky'] + [f'cat{i}' for i in range(classes - 1)]
    cfg.model.test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(48, 48))
    model = MODELS.build(cfg.model).eval()
    steps = Compose([dict(type='LoadImageFromFile'),
                     dict(type='Resize', scale=(2048, 128), keep_ratio=True),
                     dict(type='PackSegInputs')])
    data = steps(dict(img_path=img_path))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        out = model.test_step(pseudo_collate([data]))[0]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pred = out.pred_sem_seg.data
    assert pred.shape == (1, 8192, 8192), pred.shape
    assert any('seg_logits stay at the network resolution' in str(w.message)
               for w in caught)
    print('GROWTH_MB', (after - before) / 1024, 'LOGITS', tuple(out.seg_logits.data.shape))
''')


@pytest.mark.slow
def test_8k_image_segments_in_bounded_memory(tiny_config, tmp_path):
    """An 8192 x 8192 image with 21 classes through slide inference: the
    full-size class map (21 x 8k x 8k float32 = 5.6 GB) is never built; the
    process grows by well under 2 GB (the int64 prediction alone is 0.5 GB)."""
    path = str(tmp_path / 'huge.png')
    img = np.zeros((8192, 8192, 3), np.uint8)
    img[:4096] = (40, 160, 40)
    img[4096:, 2000:6000] = (200, 30, 30)
    cv2.imwrite(path, img)
    del img
    script = tmp_path / 'large.py'
    script.write_text(LARGE_IMAGE_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), tiny_config, path, '21'],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith('GROWTH_MB')][0]
    growth = float(line.split()[1])
    assert growth < 2048, line
    assert 'LOGITS (21, 128, 128)' in line


# -------------------------------------------------------------------- labels
def _write_pair(root, label):
    cv2.imwrite(str(root / 'img.png'), _image(*label.shape))
    cv2.imwrite(str(root / 'ann.png'), label)
    return root / 'img.png', root / 'ann.png'


def test_label_outside_class_range_at_test_time(segment, tmp_path):
    label = np.zeros((32, 32), np.uint8)
    label[:8] = 255   # ignored: fine
    label[10:20] = 7  # the tiny model has 3 classes
    img, ann = _write_pair(tmp_path, label)
    with pytest.raises(ValueError, match=r'ann.png holds values \[7\] outside '
                       r'the 3 classes \(0..2\).*class-name file'):
        segment(img, ann)
    label[10:20] = 2
    _write_pair(tmp_path, label)
    assert _pred(segment(img, ann)).shape == (32, 32)


def test_label_outside_class_range_in_oneshot_scan(tmp_path):
    from mmseg_powerone.datasets import OneShotDataset
    split = make_split(tmp_path / 'data', [{1: 256}, {2: 256}, {9: 256}])
    with pytest.raises(ValueError, match=r'002.png holds values \[9\] outside '
                       r'the 4 classes'):
        OneShotDataset(dataset=split, cache_dir=str(tmp_path / 'cache'))
    cache = tmp_path / 'cache'
    assert not cache.exists() or not os.listdir(cache)  # no index written


def test_label_outside_class_range_in_loss(build_segmentor):
    model = build_segmentor(layers=[0, 2], train_cfg=TRAIN).train()
    label = torch.zeros(1, 32, 32, dtype=torch.long)
    label[:, :4] = 5
    sample = SegDataSample(gt_sem_seg=PixelData(data=label))
    with pytest.raises(ValueError, match=r'values \[5\] outside the 3 classes'):
        model.loss(torch.zeros(1, 3, 32, 32), [sample])


# --------------------------------------------------------------- checkpoints
def test_checkpoint_with_missing_keys(build_segmentor):
    state = tuned_model(build_segmentor).state_dict()
    dropped = sorted(k for k in state if k.startswith('vlm.'))[0]
    del state[dropped]
    fresh = build_segmentor(layers=[0, 2], train_cfg=TRAIN)
    with pytest.raises(ValueError, match=f"missing keys \\['{dropped}'\\].*"
                       'same model config'):
        fresh.load_state_dict(state)


def test_checkpoint_with_unexpected_keys(build_segmentor):
    state = tuned_model(build_segmentor).state_dict()
    state['decode_head.conv_seg.weight'] = torch.zeros(3, 8, 1, 1)
    fresh = build_segmentor(layers=[0, 2], train_cfg=TRAIN)
    with pytest.raises(ValueError, match='unexpected keys '
                       r"\['decode_head.conv_seg.weight'\]"):
        fresh.load_state_dict(state)


def test_checkpoint_of_another_vlm(build_segmentor, tmp_path):
    from mmseg_powerone.testing import save_random_blip
    state = tuned_model(build_segmentor).state_dict()
    other_dir = save_random_blip(str(tmp_path / 'other'), seed=1,
                                 words=['sky', 'grass', 'cat', 'dog', 'puppy',
                                        'tree', 'hound'])
    other = build_segmentor(layers=[0, 2], train_cfg=TRAIN, vlm=dict(
        type='BLIPAdapter', pretrained=other_dir))
    with pytest.raises(ValueError, match='different VLM.*weights.*Load it '
                       'with the model.vlm it was trained with'):
        other.load_state_dict(state)


def test_checkpoint_of_another_class_list(build_segmentor):
    state = tuned_model(build_segmentor).state_dict()
    other = build_segmentor(layers=[0, 2], train_cfg=TRAIN,
                            class_names=['sky', 'cat', 'tree'])
    with pytest.raises(ValueError, match='tuned for the classes.*Use the '
                       'class_names it was tuned with'):
        other.load_state_dict(state)


# ------------------------------------------------------------------ settings
def test_topk_larger_than_the_number_of_layers(build_segmentor):
    with pytest.raises(ValueError, match=r'topk=4: this VLM has 3 attention'):
        build_segmentor(layers='infoscore', topk=4)


@pytest.mark.slow
def test_infoscore_on_zero_images(tiny_config, tmp_path):
    from mmseg_powerone import InfoScoreHook
    with pytest.raises(ValueError, match='num_images=0'):
        InfoScoreHook(num_images=0)
    empty = tmp_path / 'empty'
    (empty / 'img').mkdir(parents=True)
    (empty / 'ann').mkdir()
    proc = subprocess.run(
        [sys.executable, 'tools/rank_layers.py', tiny_config, '--out',
         str(tmp_path / 'rank'), '--cfg-options', 'model.layers=infoscore',
         f'test_dataloader.dataset.data_root={empty}'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'found no images under data_root' in proc.stderr, proc.stderr[-2000:]
    assert not os.path.exists(tmp_path / 'rank' / 'infoscore.json')


def test_class_without_a_valid_support(tmp_path):
    from mmseg_powerone.datasets import OneShotDataset
    split = make_split(tmp_path / 'data', [{1: 256}, {2: 256}])
    with pytest.raises(ValueError, match=r"'bird' \(0 valid\).*on_missing"):
        OneShotDataset(dataset=split, cache_dir=str(tmp_path / 'cache'))


# -------------------------------------------------------------------- writes
def test_checkpoint_write_is_atomic(tmp_path):
    """PowerOneRunner saves checkpoints through the 'local_atomic' backend;
    a failure mid write keeps the previous file and leaves no temporary
    behind."""
    from mmengine.fileio import get_file_backend
    backend = get_file_backend(backend_args=dict(backend='local_atomic'))
    path = tmp_path / 'epoch_1.pth'
    backend.put(b'complete checkpoint', path)

    with pytest.raises(TypeError):  # the write fails half-way
        backend.put('not bytes', path)
    assert path.read_bytes() == b'complete checkpoint'
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_json_and_cache_writes_are_atomic(tmp_path):
    from mmseg_powerone.utils import atomic_write
    path = tmp_path / 'infoscore.json'
    path.write_text('{"layers": [0, 1]}')
    with pytest.raises(RuntimeError):
        with atomic_write(str(path), 'w') as f:
            f.write('{"lay')
            raise RuntimeError('killed')
    assert json.loads(path.read_text()) == {'layers': [0, 1]}
    assert os.listdir(tmp_path) == ['infoscore.json']
