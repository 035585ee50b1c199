"""Per-image outputs lose nothing: class indices above 255 survive every
label map we write, and images that share a file stem get their own
outputs."""
import os

import cv2
import numpy as np
import pytest
import torch

from helpers import run
from mmseg_powerone.utils.labels import (UniqueNames, resize_labels,
                                         save_label_png)


@pytest.mark.parametrize('num_classes,dtype', [(21, np.uint8), (256, np.uint8),
                                               (300, np.uint16)])
def test_label_png_keeps_every_class(tmp_path, num_classes, dtype):
    labels = np.array([[0, 11], [num_classes - 1, 5]])
    save_label_png(str(tmp_path / 'x.png'), labels, num_classes)
    back = cv2.imread(str(tmp_path / 'x.png'), cv2.IMREAD_UNCHANGED)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, labels)


def test_resize_labels_keeps_indices_above_255():
    labels = np.array([[267, 3], [299, 0]])
    out = resize_labels(labels, (4, 6))
    assert out.shape == (4, 6) and set(np.unique(out)) == {0, 3, 267, 299}
    assert (out[:2, :3] == 267).all() and (out[2:, 3:] == 0).all()


def test_unique_names():
    names = UniqueNames()
    assert names.name('d/a.jpg') == ('a', None)
    assert names.name('d/a.png') == ('a_png', 'd/a.jpg')
    assert names.name('e/a.png')[0] == 'a_png_1'
    assert names.name('d/a.jpg') == ('a', None)  # the same input again
    assert names.name('d/b.png') == ('b', None)


def test_save_predictions_hook(tmp_path):
    """tools/test.py --out's writer: 16-bit PNGs for 300 classes, and two
    images named a.png in two folders give two files, with a warning."""
    from types import SimpleNamespace

    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    from mmseg_powerone.engine import SavePredictionsHook
    hook = SavePredictionsHook(str(tmp_path / 'out'))
    runner = SimpleNamespace(model=SimpleNamespace(num_classes=300))
    samples = []
    for folder, value in (('x', 267), ('y', 3)):
        s = SegDataSample(pred_sem_seg=PixelData(
            data=torch.full((1, 2, 2), value)))
        s.set_metainfo(dict(img_path=f'/data/{folder}/a.png'))
        samples.append(s)
    with pytest.warns(UserWarning, match='shares its file stem'):
        hook.after_test_iter(runner, 0, None, samples)
    a = cv2.imread(str(tmp_path / 'out' / 'a.png'), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / 'out' / 'a_png.png'), cv2.IMREAD_UNCHANGED)
    assert a.dtype == np.uint16 and (a == 267).all() and (b == 3).all()


@pytest.mark.slow
def test_tools_test_out_writes_label_pngs(tiny_config, tiny_dataset, tmp_path):
    run(['tools/test.py', tiny_config, '--work-dir', str(tmp_path / 'w'),
         '--out', str(tmp_path / 'preds')])
    files = sorted(os.listdir(tmp_path / 'preds'))
    assert files == sorted(os.listdir(os.path.join(tiny_dataset, 'img')))
    pred = cv2.imread(str(tmp_path / 'preds' / files[0]), cv2.IMREAD_UNCHANGED)
    assert pred.dtype == np.uint8 and pred.shape == (64, 64)
    assert set(np.unique(pred)) <= {0, 1, 2}


def test_inferencer_writes_16_bit_predictions_beyond_256_classes(
        tiny_config, tmp_path):
    from mmseg_powerone.apis import PowerOneInferencer
    inferencer = PowerOneInferencer(tiny_config)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    classes = ['cat'] + [f'dog{i}' for i in range(299)]
    out = inferencer(img, classes=classes, out_dir=str(tmp_path))
    saved = cv2.imread(str(tmp_path / 'pred' / '00000000_pred.png'),
                       cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint16
    np.testing.assert_array_equal(saved, np.asarray(out['predictions']))


@pytest.mark.slow
def test_demo_keeps_images_that_share_a_stem(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    os.makedirs(tmp_path / 'in')
    cv2.imwrite(str(tmp_path / 'in' / 'a.png'), img)
    cv2.imwrite(str(tmp_path / 'in' / 'a.jpg'), 255 - img)
    out = run(['tools/demo.py', str(tmp_path / 'in'), '--classes', 'circle, star',
               '--out', str(tmp_path / 'out')])
    assert 'shares its file stem' in out
    written = sorted(os.listdir(tmp_path / 'out'))
    assert written == ['a_heatmaps.png', 'a_overlay.png', 'a_png_heatmaps.png',
                       'a_png_overlay.png']


@pytest.mark.slow
def test_demo_pictures_stay_readable_with_many_or_foreign_names(tmp_path):
    """300 classes: the heatmap grid shows the 8 strongest (not 300
    columns, 48,160 px wide) and the legend the predicted ones; names the
    font cannot draw become numbers, named in classes.txt."""
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    path = str(tmp_path / 'x.png')
    cv2.imwrite(path, img)
    many = ', '.join(['circle', 'star'] + [f'thing{i}' for i in range(298)])
    run(['tools/demo.py', path, '--classes', many, '--out', str(tmp_path / 'a')])
    heat = cv2.imread(str(tmp_path / 'a' / 'x_heatmaps.png'))
    over = cv2.imread(str(tmp_path / 'a' / 'x_overlay.png'))
    assert heat.shape[1] < 1500 and over.shape[:2] == (360, 700)
    out = run(['tools/demo.py', path, '--classes', '猫, 犬, star',
               '--out', str(tmp_path / 'b')])
    assert 'the pictures number the classes' in out
    legend = (tmp_path / 'b' / 'classes.txt').read_text(encoding='utf-8')
    assert '#1\t猫' in legend and '#3\tstar' in legend


def test_visualizer_enlarges_and_numbers_names_it_cannot_draw(tmp_path):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    from mmseg_powerone.visualization import PowerOneSegVisualizer
    vis = PowerOneSegVisualizer(name='vis_numbered', min_size=128)
    vis.dataset_meta = dict(classes=('background', '猫', 'dog'),
                            palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0]])
    sample = SegDataSample(pred_sem_seg=PixelData(
        data=torch.tensor([[[0, 1], [2, 1]]])))
    out = str(tmp_path / 'x.png')
    with pytest.warns(UserWarning, match='#1 = 猫'):
        vis.add_datasample('x', np.zeros((2, 2, 3), np.uint8), sample,
                           draw_gt=False, out_file=out)
    assert cv2.imread(out).shape == (128, 128, 3)
    assert vis.dataset_meta['classes'][1] == '猫'  # restored
