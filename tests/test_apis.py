"""Inference with class names chosen at call time, the demo, and painted
predictions from tools/test.py --show-dir."""
import glob
import os
import shutil

import numpy as np
import pytest

from helpers import run


@pytest.fixture(scope='module')
def inferencer(tiny_config):
    from mmseg_powerone.apis import PowerOneInferencer
    return PowerOneInferencer(tiny_config, device='cpu')


def image_path(tiny_dataset, i=0):
    return os.path.join(tiny_dataset, 'img', f'{i:03d}.png')


def test_model_classes_are_kept_not_cityscapes(inferencer):
    assert inferencer.model.dataset_meta['classes'] == ('sky', 'cat', 'dog')
    assert len(inferencer.model.dataset_meta['palette']) == 3


def test_call_time_class_names_change_the_class_set(inferencer, tiny_dataset):
    img = image_path(tiny_dataset)
    two = inferencer(img, classes=['cat'])
    assert inferencer.model.dataset_meta['classes'] == ('sky', 'cat')
    assert set(np.unique(two['predictions'])) <= {0, 1}
    four = inferencer(img, classes=['cat', 'dog, puppy', 'tree'],
                      background=['grass'])
    assert inferencer.model.class_names == ['grass', 'cat', 'dog', 'tree']
    assert inferencer.model.prompts.classes[2] == ('dog', 'puppy')
    samples = inferencer(img, return_datasamples=True)
    assert samples.seg_logits.data.shape[0] == 4
    assert four['predictions'].shape == two['predictions'].shape


def test_model_without_background_takes_object_classes_only(tiny_config,
                                                            tiny_dataset):
    from mmseg_powerone.apis import PowerOneInferencer
    from mmengine.config import Config
    cfg = Config.fromfile(tiny_config)
    cfg.model.has_background = False
    inf = PowerOneInferencer(cfg, device='cpu')
    out = inf(image_path(tiny_dataset), classes=['cat', 'dog'])
    assert inf.model.class_names == ['cat', 'dog']
    assert set(np.unique(out['predictions'])) <= {0, 1}
    with pytest.raises(ValueError, match='no background class'):
        inf(image_path(tiny_dataset), classes=['cat'], background='sky')


@pytest.mark.parametrize('classes, match', [
    ([], 'empty'),
    (['cat', 'cat'], 'cat'),
    (['cat', ' '], 'blank'),
])
def test_bad_class_lists_are_refused(inferencer, tiny_dataset, classes, match):
    with pytest.raises(ValueError, match=match):
        inferencer(image_path(tiny_dataset), classes=classes)


def test_bad_images_and_folders(inferencer, tiny_dataset, tmp_path):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='not a readable image'):
        inferencer(str(bad), classes=['cat'])
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.txt').write_text('x')
    with pytest.raises(ValueError, match='no image files'):
        inferencer(str(empty))
    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    shutil.copy(image_path(tiny_dataset, 0), mixed / 'a.png')
    shutil.copy(bad, mixed / 'b.png')
    shutil.copy(image_path(tiny_dataset, 4), mixed / 'c.png')
    with pytest.warns(UserWarning, match='Skipping .*b.png'):
        out = inferencer(str(mixed))
    assert len(out['predictions']) == 2


def test_demo_writes_overlay_and_heatmaps(tiny_config, tiny_dataset, tmp_path):
    out = str(tmp_path / 'one')
    run(['tools/demo.py', image_path(tiny_dataset, 1), '--classes',
         'cat, dog/puppy', '--config', tiny_config, '--out', out])
    assert sorted(os.listdir(out)) == ['001_heatmaps.png', '001_overlay.png']
    folder = str(tmp_path / 'all')
    printed = run(['tools/demo.py', os.path.join(tiny_dataset, 'img'),
                   '--classes', 'cat', '--config', tiny_config, '--out', folder])
    assert len(glob.glob(os.path.join(folder, '*_overlay.png'))) == 6
    assert len(glob.glob(os.path.join(folder, '*_heatmaps.png'))) == 6
    assert "'cat'" in printed or 'cat' in printed


def test_demo_runs_on_the_embedded_model(tmp_path):
    from mmseg_powerone.datasets.shapes_world import render
    import cv2
    img, _, _, _ = render(3, 'val', 0)
    path = str(tmp_path / 'shape.png')
    cv2.imwrite(path, img[:, :, ::-1])  # RGB -> BGR
    out = str(tmp_path / 'demo')
    run(['tools/demo.py', path, '--classes', 'circle, star, ring', '--out', out])
    assert sorted(os.listdir(out)) == ['shape_heatmaps.png', 'shape_overlay.png']


def test_show_dir_writes_painted_predictions(tiny_config, tmp_path):
    show = str(tmp_path / 'show')
    run(['tools/test.py', tiny_config, '--work-dir', str(tmp_path / 'w'),
         '--show-dir', show])
    assert len(glob.glob(os.path.join(show, '**', '*.png'), recursive=True)) == 6
