"""PowerOneInferencer.adapt: one-shot tuning at call time on a user's own
examples. It shares the config route's code, so the two end with the same
weights; bad examples are refused before anything is written."""
import os

import cv2
import numpy as np
import pytest
import torch

OBJECTS = ['cat', 'dog']  # the tiny configs' classes after the background


@pytest.fixture(scope='module')
def supports(oneshot_config):
    """The (image, label) files of the one-shot config's draw 0, in the
    order its OneShotDataset gives them to the sampler."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    import mmseg_powerone  # noqa: F401  (registration)
    init_default_scope('mmseg')
    cfg = Config.fromfile(oneshot_config)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return [(dataset.get_data_info(i)['img_path'],
             dataset.get_data_info(i)['seg_map_path'])
            for i in range(len(dataset))]


def tuned_state(state_dict):
    return {k: v for k, v in state_dict.items() if k != '_extra_state'}


def adapt(config, examples, classes=OBJECTS, **kwargs):
    from mmseg_powerone.apis import PowerOneInferencer
    kwargs.setdefault('lr', 1e-2)   # the tiny one-shot config's schedule
    kwargs.setdefault('epochs', 4)
    return PowerOneInferencer(config, device='cpu').adapt(
        examples, classes=classes, **kwargs)


def test_adapt_and_the_config_route_end_with_the_same_weights(
        oneshot_config, supports, tmp_path):
    """tools/train.py on the one-shot config and adapt() on that config's
    supports (same seed, schedule and threads): bit for bit."""
    from mmseg_powerone.commands.train_test import train
    work = tmp_path / 'config_route'
    train([oneshot_config, '--work-dir', str(work)])
    route = torch.load(work / 'epoch_4.pth', map_location='cpu',
                       weights_only=True)['state_dict']
    tuned = adapt(oneshot_config, supports)
    ours = tuned._adaptation[0]['state_dict']
    assert tuned_state(route).keys() == tuned_state(ours).keys()
    assert len(tuned_state(ours)) > 0
    for key, value in tuned_state(route).items():
        assert torch.equal(value, ours[key]), key
    # and it moved: the tuned weights differ from the untuned model's
    from mmseg_powerone.apis import PowerOneInferencer
    before = dict(PowerOneInferencer(oneshot_config).model.named_parameters())
    assert set(tuned_state(ours)) <= set(before)
    assert any(not torch.equal(before[k].detach(), v)
               for k, v in tuned_state(ours).items())


def test_arrays_and_binary_masks_train_as_the_files_do(
        oneshot_config, supports, tmp_path):
    """Images as BGR arrays and masks as (image, binary mask, name) are the
    same examples as the files: same weights."""
    from_files = adapt(oneshot_config, supports)
    examples = []
    for img_path, label_path in supports:
        img = cv2.imread(img_path, cv2.IMREAD_COLOR)
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        cls = int(label.max())
        examples.append((img, label == cls, OBJECTS[cls - 1]))
    from_arrays = adapt(oneshot_config, examples)
    a = tuned_state(from_files._adaptation[0]['state_dict'])
    b = tuned_state(from_arrays._adaptation[0]['state_dict'])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_save_is_what_tools_test_and_the_inferencer_load(
        oneshot_config, supports, tiny_dataset, tmp_path):
    from mmseg_powerone.apis import PowerOneInferencer
    from mmseg_powerone.commands.train_test import test
    tuned = adapt(oneshot_config, supports)
    path = str(tmp_path / 'out' / 'cat_dog.pth')
    config = tuned.save(path)
    assert config == str(tmp_path / 'out' / 'cat_dog.py')
    image = os.path.join(tiny_dataset, 'img', '004.png')
    again = PowerOneInferencer(config, path, device='cpu')
    np.testing.assert_array_equal(again(image)['predictions'],
                                  tuned(image)['predictions'])
    assert again.model.layers == tuned.model.layers == [0, 2]
    # tested on the user's own labelled images: a folder given when saving
    # or when testing; none given is refused with the command that fixes it
    folder = _test_folder(tiny_dataset, tmp_path / 'mine')
    config = tuned.save(path, test_data=folder)
    metrics = test([config, path, '--work-dir', str(tmp_path / 'test')])
    assert 0 <= metrics['mIoU'] <= 100
    bare = tuned.save(str(tmp_path / 'bare' / 'cat_dog.pth'))
    with pytest.raises(ValueError, match=r'no data_root.*--cfg-options '
                       r'test_dataloader.dataset.data_root=FOLDER'):
        test([bare, path, '--work-dir', str(tmp_path / 'test2')])
    again = test([bare, path, '--work-dir', str(tmp_path / 'test3'),
                  '--cfg-options', f'test_dataloader.dataset.data_root={folder}'])
    assert again['mIoU'] == metrics['mIoU']
    # masks of other classes than the model's: said so, not scored
    other = _test_folder(tiny_dataset, tmp_path / 'other', value=3)
    with pytest.raises(ValueError, match=r'holds values \[3\].*does not '
                       'match model.class_names'):
        test([bare, path, '--work-dir', str(tmp_path / 'test4'),
              '--cfg-options', f'test_dataloader.dataset.data_root={other}'])
    with pytest.raises(ValueError, match='Call tuned = inferencer.adapt'):
        PowerOneInferencer(oneshot_config).save(str(tmp_path / 'x.pth'))


def _test_folder(tiny_dataset, root, value=None):
    """The tiny dataset as a user's test folder: images/ and masks/ (index
    maps over the model's classes; ``value`` replaces every object label)."""
    import shutil
    os.makedirs(root / 'images')
    os.makedirs(root / 'masks')
    for name in sorted(os.listdir(os.path.join(tiny_dataset, 'img'))):
        shutil.copy(os.path.join(tiny_dataset, 'img', name),
                    root / 'images' / name)
        label = cv2.imread(os.path.join(tiny_dataset, 'ann', name),
                           cv2.IMREAD_UNCHANGED)
        if value is not None:
            label[label > 0] = value
        cv2.imwrite(str(root / 'masks' / name), label)
    return str(root)


def test_the_test_folder_names_what_is_missing(tmp_path):
    from mmseg_powerone.datasets import ImageMaskFolderDataset
    os.makedirs(tmp_path / 'images')
    with pytest.raises(ValueError, match='masks is not a folder'):
        ImageMaskFolderDataset(data_root=str(tmp_path))
    os.makedirs(tmp_path / 'masks')
    _image(tmp_path / 'images', 'x.jpg')
    with pytest.raises(ValueError, match=r"have no mask .*\['x.png'\]"):
        ImageMaskFolderDataset(data_root=str(tmp_path))
    (tmp_path / 'masks' / 'x.png').write_bytes(
        _jpeg(np.zeros((64, 64), np.uint8)))
    with pytest.raises(ValueError, match='is a JPEG under a .png name'):
        ImageMaskFolderDataset(data_root=str(tmp_path))


def test_layers_not_fixed_are_ranked_on_the_examples(
        oneshot_config, supports):
    tuned = adapt(oneshot_config, supports, layers='infoscore', epochs=1)
    ranking = tuned._adaptation[0]['meta'].get('infoscore') or {}
    layers = tuned.model.layers
    assert len(layers) == 2 and all(0 <= l < 3 for l in layers)
    assert ranking.get('num_images', len(supports)) == len(supports)


def _image(tmp_path, name='a.png', size=(64, 64)):
    path = str(tmp_path / name)
    cv2.imwrite(path, np.full(size + (3,), 128, np.uint8))
    return path


@pytest.mark.parametrize('case, message', [
    ('empty', 'examples is empty'),
    ('size', r'examples\[0\] \(.*a.png\): the mask is 32 x 32 but the image '
             r'is 64 x 64'),
    ('value', r'examples\[0\] .*holds values \[7\], but classes has 2 '
              r'names'),
    ('absent', r"No example shows 'dog'"),
    ('unknown', r"examples\[0\] .*is an example of 'horse', which is not in "
                r'classes'),
    ('not_binary', r'a binary mask .*holds \[0, 1, 2\]'),
    ('shape', r'an example is \(image, mask\)'),
])
def test_bad_examples_are_refused_before_anything_is_written(
        oneshot_config, tmp_path, case, message):
    from mmseg_powerone.apis import PowerOneInferencer
    image = _image(tmp_path)
    good = np.zeros((64, 64), np.uint8)
    good[:10, :10], good[20:30, 20:30] = 1, 2
    examples = {
        'empty': [],
        'size': [(image, np.zeros((32, 32), np.uint8))],
        'value': [(image, np.where(good == 2, 7, good).astype(np.uint8))],
        'absent': [(image, np.where(good == 2, 0, good).astype(np.uint8))],
        'unknown': [(image, good > 0, 'horse')],
        'not_binary': [(image, good, 'cat')],
        'shape': [image],
    }[case]
    inferencer = PowerOneInferencer(oneshot_config, device='cpu')
    work = tmp_path / 'work'
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match=message):
        inferencer.adapt(examples, classes=OBJECTS, work_dir=str(work))
    assert sorted(os.listdir(tmp_path)) == before


def test_adapt_runs_on_the_embedded_model_with_a_binary_mask():
    """The README's three lines, on a generated shapes image: the default
    inferencer (its fixed layers), one binary mask."""
    from mmseg_powerone.apis import PowerOneInferencer
    from mmseg_powerone.shapes.world import CLASSES, render
    img, label, _, _ = render(seed=3, split='val', index=0)
    shape = CLASSES[int(label.max())]
    image = img[:, :, ::-1].copy()  # BGR, as mmcv reads files
    tuned = PowerOneInferencer(layers=[0, 2]).adapt(
        [(image, label == label.max(), shape)], classes=[shape], epochs=1)
    assert tuned(image, classes=[shape])['predictions'].shape == label.shape
    assert tuned.model.class_names[1] == shape


@pytest.mark.parametrize('config', [
    'powerone/powerone_blip-tiny_zeroshot_shapes.py',
    'powerone/powerone_blip-large_oneshot-protocol_voc21.py'])
def test_examples_take_the_test_geometry_with_their_labels(config):
    """adapt() trains through the config's test pipeline (unwrapping a
    OneShotDataset test side) with the labels loaded before any resize or
    padding, so image and label stay aligned."""
    from mmseg_powerone.apis.adapt import training_pipeline
    from mmseg_powerone.utils.resources import load_config
    dataset = load_config(config).test_dataloader.dataset
    while 'pipeline' not in dataset:
        dataset = dataset.dataset
    steps = [t['type'] for t in training_pipeline(dataset.pipeline)]
    assert steps[:2] == ['LoadImageFromFile', 'LoadAnnotations']
    assert steps[-1] == 'PackSegInputs' and steps.count('LoadAnnotations') == 1


def _circle(size=(64, 64), value=1):
    mask = np.zeros(size, np.uint8)
    cv2.circle(mask, (size[1] // 2, size[0] // 2), 18, value, -1)
    return mask


def _blocks():
    """A 0/1 mask of four rectangles: sharp corners, which JPEG rings
    around (23 pixels of 2 at quality 90)."""
    rng = np.random.default_rng(1)
    mask = np.zeros((64, 64), np.uint8)
    for _ in range(4):
        x, y, w, h = rng.integers(0, 48, 4)
        mask[y:y + 4 + h % 20, x:x + 4 + w % 20] = 1
    return mask


def _jpeg(array, quality=90):
    """``array`` saved as a JPEG file's bytes, as an image editor saves it."""
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(array).save(out, 'JPEG', quality=quality)
    return out.getvalue()


def _decoded(data):
    from PIL import Image
    import io
    return np.array(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize('case, message', [
    # a JPEG file: refused whatever its values, index map or binary mask
    ('jpeg_index_map', r'the mask .*m.jpg is a JPEG, a lossy format.*Save '
                       'the mask as PNG'),
    ('jpeg_binary', r'the mask .*m.jpg is a JPEG, a lossy format'),
    # a JPEG under another name: found by its bytes
    ('jpeg_named_png', r'the mask .*m.png is a JPEG'),
    # decoded by the user: the noise invents 'square' along the circle's edge
    ('noisy_index_map', r"'square' appears only as thin slivers along the "
                        'edges.*lossily compressed mask'),
    ('noisy_binary', r'Many values near 0 and 255: a mask saved in a lossy '
                     'format'),
])
def test_lossy_masks_never_invent_a_class(tmp_path, case, message):
    """A 0/1 mask saved as JPEG (quality 90) holds 2s along its edges:
    with classes ['circle', 'square'] they would train 'square' on pixels
    that are circle or background."""
    from mmseg_powerone.apis.adapt import read_examples
    image = _image(tmp_path)
    circle = _blocks()
    noisy = _decoded(_jpeg(circle))
    assert (noisy == 2).sum() == 23, 'JPEG noise expected'
    jpg = tmp_path / 'm.jpg'
    jpg.write_bytes(_jpeg(circle))
    png = tmp_path / 'm.png'
    png.write_bytes(_jpeg(circle * 255))
    examples = {
        'jpeg_index_map': [(image, str(jpg))],
        'jpeg_binary': [(image, str(jpg), 'circle')],
        'jpeg_named_png': [(image, str(png), 'circle')],
        'noisy_index_map': [(image, noisy)],
        'noisy_binary': [(image, _decoded(_jpeg(circle * 255)), 'circle')],
    }[case]
    with pytest.raises(ValueError, match=message):
        read_examples(examples, ['circle', 'square'])
    # the same mask, lossless: accepted, 'square' only where it is drawn
    square = circle.copy()
    square[2:12, 2:12] = 2
    read = read_examples([(image, square)], ['circle', 'square'])
    assert set(np.unique(read[0]['label']).tolist()) == {0, 1, 2}


def test_a_binary_mask_may_ignore_pixels_with_255(tmp_path):
    """One class, 1 for it, 255 for an unlabelled border (mmseg's ignore
    value): accepted, the border stays ignored; 0/255 masks still mean
    255 = the class."""
    from mmseg_powerone.apis.adapt import read_examples
    image = _image(tmp_path)
    mask = _circle()
    mask[:4], mask[-4:] = 255, 255
    label = read_examples([(image, mask, 'circle')], ['circle'])[0]['label']
    assert set(np.unique(label).tolist()) == {0, 1, 255}
    assert (label[:4] == 255).all() and label[32, 32] == 1
    white = read_examples([(image, _circle(value=255), 'circle')],
                          ['circle'])[0]['label']
    assert set(np.unique(white).tolist()) == {0, 1}
    with pytest.raises(ValueError, match=r'holds 0 \(background\) and 1 or '
                       r'255 \(the class\).*\[0, 1, 2\]'):
        read_examples([(image, np.where(mask == 255, 2, mask), 'circle')],
                      ['circle'])


def test_a_mask_of_an_exif_turned_photo_names_the_orientation(tmp_path):
    """A phone photo stored 48 x 64 with EXIF orientation 6 is decoded
    64 x 48 (as viewers show it, as training reads it); a mask drawn on
    the stored pixels does not fit, and the error says why."""
    from PIL import Image
    from mmseg_powerone.apis.adapt import read_examples
    path = str(tmp_path / 'photo.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(path, exif=exif)
    mask = _circle((48, 64))
    with pytest.raises(ValueError, match=r'the mask is 48 x 64 but the image '
                       r'is 64 x 48.*EXIF orientation 6.*height and width '
                       'swapped.*Turn the mask the same way'):
        read_examples([(path, mask, 'circle')], ['circle'])
    read = read_examples([(path, np.ascontiguousarray(np.rot90(mask, -1)),
                           'circle')], ['circle'])
    assert read[0]['label'].shape == (64, 48)


def test_adapt_prints_its_progress_not_the_runner_setup(capfd):
    """One adapt() call: the iterations and this package's warnings on the
    terminal, not the config, environment, hook order, weight-loading bars
    or mmengine's notes; verbose=True brings them back."""
    from mmseg_powerone.apis import PowerOneInferencer
    from mmseg_powerone.shapes.world import CLASSES, render
    img, label, _, _ = render(seed=3, split='val', index=0)
    shape = CLASSES[int(label.max()) - 1]
    example = [(img[:, :, ::-1].copy(), label == label.max(), shape)]
    inferencer = PowerOneInferencer(layers=[0, 2])
    capfd.readouterr()
    inferencer.adapt(example, classes=[shape], epochs=1)
    quiet = capfd.readouterr()
    lines = (quiet.out + quiet.err).splitlines()
    assert any('Iter(train) [1/1]' in l and 'eta' in l for l in lines), lines
    assert not any('Loading weights' in l or 'System environment' in l
                   or 'Config:' in l or 'mmengine/' in l for l in lines), lines
    assert len(lines) <= 12, lines
    inferencer.adapt(example, classes=[shape], epochs=1, verbose=True)
    loud = capfd.readouterr()
    assert 'System environment' in loud.out and 'Config:' in loud.out
    assert len((loud.out + loud.err).splitlines()) > 100


def test_the_demo_names_a_lossy_example_mask(tmp_path):
    """The demo's --examples folder: a NAME_mask.jpg is named as a lossy
    mask, not reported as 'no mask'."""
    from mmseg_powerone.commands.demo import example_pairs
    _image(tmp_path, 'cat.jpg')
    (tmp_path / 'cat_mask.jpg').write_bytes(_jpeg(_circle()))
    with pytest.raises(ValueError, match=r"\['cat_mask.jpg'\] are masks in a "
                       'lossy format.*Save each mask as PNG'):
        example_pairs(str(tmp_path))
    os.remove(tmp_path / 'cat_mask.jpg')
    cv2.imwrite(str(tmp_path / 'cat_mask.png'), _circle())
    assert example_pairs(str(tmp_path)) == [
        (str(tmp_path / 'cat.jpg'), str(tmp_path / 'cat_mask.png'))]


def test_other_array_conventions_are_read_or_named(tmp_path):
    """A 0.0/1.0 float mask is read as its whole numbers; a soft mask and a
    colour-coded mask are refused with what to give instead."""
    from mmseg_powerone.apis.adapt import read_examples
    image = _image(tmp_path)
    mask = _circle()
    read = read_examples([(image, mask.astype(np.float32), 'circle')],
                         ['circle'])
    assert set(np.unique(read[0]['label']).tolist()) == {0, 1}
    with pytest.raises(ValueError, match=r'not whole numbers.*\(mask > 0.5\)'):
        read_examples([(image, mask * 0.7, 'circle')], ['circle'])
    colour = np.dstack([mask * 200, mask * 10, mask * 90]).astype(np.uint8)
    with pytest.raises(ValueError, match='a colour-coded mask.*palette-mode'):
        read_examples([(image, colour)], ['circle'])
