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


@pytest.mark.slow
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


@pytest.mark.slow
def test_demo_runs_on_the_embedded_model(tmp_path):
    from mmseg_powerone.shapes.world import render
    import cv2
    img, _, _, _ = render(3, 'val', 0)
    path = str(tmp_path / 'shape.png')
    cv2.imwrite(path, img[:, :, ::-1])  # RGB -> BGR
    out = str(tmp_path / 'demo')
    run(['tools/demo.py', path, '--classes', 'circle, star, ring', '--out', out])
    assert sorted(os.listdir(out)) == ['shape_heatmaps.png', 'shape_overlay.png']


@pytest.mark.slow
def test_show_dir_writes_painted_predictions(tiny_config, tmp_path):
    """Where --help says, enlarged so a 64 x 64 image gives two readable
    512 x 512 panels (ground truth | prediction)."""
    import cv2
    show = str(tmp_path / 'show')
    out = run(['tools/test.py', tiny_config, '--work-dir', str(tmp_path / 'w'),
               '--show-dir', show])
    where = os.path.join(show, 'vis_data', 'vis_image')
    assert f'Painted predictions: {where}' in out
    files = glob.glob(os.path.join(where, '*.png'))
    assert len(files) == 6
    assert cv2.imread(files[0]).shape == (512, 1024, 3)


@pytest.mark.slow
def test_show_without_a_display_says_so(tiny_config, tmp_path):
    import subprocess
    import sys

    from helpers import REPO
    env = {k: v for k, v in os.environ.items()
           if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    proc = subprocess.run([sys.executable, 'tools/test.py', tiny_config,
                           '--work-dir', str(tmp_path), '--show'], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert '--show needs a display' in proc.stderr and '--show-dir' in proc.stderr


@pytest.fixture(scope='module')
def exported(tiny_config, tmp_path_factory):
    """A config that chooses its layers by InfoScore, exported: the layers
    are ranked at export and travel with the classes in the checkpoint."""
    d = tmp_path_factory.mktemp('export')
    cfg = d / 'infoscore_cfg.py'
    cfg.write_text(f"""
_base_ = [{tiny_config!r}]
model = dict(layers='infoscore', topk=2)
custom_hooks = [dict(type='InfoScoreHook', num_images=4)]
""")
    ckpt = str(d / 'exported.pth')
    out = run(['tools/export_checkpoint.py', str(cfg), ckpt])
    assert 'chosen by InfoScore' in out
    return str(cfg), ckpt


def test_export_stores_classes_and_infoscore_layers(exported):
    import torch
    _, ckpt = exported
    meta = torch.load(ckpt, weights_only=True)['meta']
    assert meta['dataset_meta']['classes'] == ('sky', 'cat', 'dog')
    assert len(meta['layers']) == 2
    assert meta['infoscore']['selected'] == meta['layers']
    assert meta['infoscore']['num_images'] == 4


def test_mmseg_init_inference_and_show(exported, tiny_dataset, tmp_path):
    """mmseg.apis.init_model / inference_model / show_result_pyplot on our
    config and its exported checkpoint."""
    import torch
    from mmseg.apis import inference_model, init_model, show_result_pyplot
    cfg, ckpt = exported
    meta = torch.load(ckpt, weights_only=True)['meta']
    model = init_model(cfg, ckpt, device='cpu')
    assert model.layers == meta['layers']
    assert model.dataset_meta['classes'] == ('sky', 'cat', 'dog')
    result = inference_model(model, image_path(tiny_dataset, 2))
    assert result.pred_sem_seg.data.shape == (1, 64, 64)
    assert set(result.pred_sem_seg.data.unique().tolist()) <= {0, 1, 2}
    out_file = str(tmp_path / 'shown.png')
    drawn = show_result_pyplot(model, image_path(tiny_dataset, 2), result,
                               show=False, out_file=out_file)
    assert drawn.shape == (64, 64, 3) and os.path.isfile(out_file)
    # without a checkpoint the model still knows its own classes
    bare = init_model(cfg, None,
                      device='cpu')
    assert bare.dataset_meta['classes'] == ('sky', 'cat', 'dog')


def test_mmseg_inferencer_uses_the_model_classes(exported, tiny_dataset):
    """mmseg's own MMSegInferencer: our classes (not Cityscapes'), the
    exported layers; the same predictions as ours."""
    from mmseg.apis import MMSegInferencer
    from mmseg_powerone.apis import PowerOneInferencer
    cfg, ckpt = exported
    stock = MMSegInferencer(cfg, weights=ckpt, device='cpu')
    assert stock.model.dataset_meta['classes'] == ('sky', 'cat', 'dog')
    ours = PowerOneInferencer(cfg, ckpt, device='cpu')
    assert stock.model.layers == ours.model.layers
    a = stock(image_path(tiny_dataset, 3))['predictions']
    b = ours(image_path(tiny_dataset, 3))['predictions']
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_export_without_a_way_to_choose_layers_says_what_to_do(tiny_config,
                                                              tmp_path):
    import subprocess
    import sys

    from helpers import REPO
    cfg = tmp_path / 'no_hook.py'
    cfg.write_text(f"_base_ = [{tiny_config!r}]\nmodel = dict(layers='infoscore')\n")
    proc = subprocess.run([sys.executable, 'tools/export_checkpoint.py',
                           str(cfg), str(tmp_path / 'x.pth')], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'has no InfoScoreHook' in proc.stderr
    assert not os.path.exists(tmp_path / 'x.pth')


def test_default_inferencer_resizes_camera_photos():
    """A 4032 x 3024 photo through the default (embedded) config is scaled
    to the model's 64 x 64 working size, aspect kept (the network sees
    64 x 48), and the prediction comes back at the photo's size."""
    from mmseg_powerone.apis import PowerOneInferencer
    inf = PowerOneInferencer(layers=[0, 2])
    steps = [t['type'] for t in inf.cfg.test_dataloader.dataset.pipeline]
    assert steps[1] == 'Resize'
    img = np.random.default_rng(0).integers(0, 255, (3024, 4032, 3), np.uint8)
    sample = inf(img, classes=['circle', 'star'], return_datasamples=True)
    assert sample.metainfo['img_shape'] == (48, 64)
    assert sample.pred_sem_seg.data.shape == (1, 3024, 4032)


def test_call_time_class_errors_speak_of_the_callers_list(inferencer,
                                                          tiny_dataset):
    img = image_path(tiny_dataset)
    # the caller's index (the background is not one of their classes)
    with pytest.raises(ValueError, match=r'classes\[2\] .*trailing comma'):
        inferencer(img, classes=['cat', 'dog', ''])
    # a background name given as a class says which background it is
    with pytest.raises(ValueError, match=r"classes\[1\] names 'sky', which is "
                       r"one of the names of class 0, the model's default "
                       r"background \(sky, grass\).*background="):
        inferencer(img, classes=['cat', 'sky'])
    with pytest.raises(ValueError, match='the background you gave'):
        inferencer(img, classes=['cat', 'grass'], background=['grass', 'wall'])


def test_embedded_model_warns_that_its_background_is_the_worlds(tmp_path):
    from mmseg_powerone.apis import PowerOneInferencer
    inf = PowerOneInferencer(layers=[0, 2])
    with pytest.warns(UserWarning, match="background is the embedded world's"):
        inf.set_classes(['dog'])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        inf.set_classes(['dog'], background=['floor', 'wall'])


@pytest.mark.slow
def test_demo_checks_its_input_before_loading_a_model(tmp_path):
    import subprocess
    import sys

    from helpers import REPO
    proc = subprocess.run([sys.executable, 'tools/demo.py', str(tmp_path / 'nope.png'),
                           '--classes', 'cat'], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and 'nope.png does not exist' in proc.stderr
    assert 'Loading weights' not in proc.stderr + proc.stdout
