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
    metrics = test([config, path, '--work-dir', str(tmp_path / 'test')])
    assert 0 <= metrics['mIoU'] <= 100
    with pytest.raises(ValueError, match='Call tuned = inferencer.adapt'):
        PowerOneInferencer(oneshot_config).save(str(tmp_path / 'x.pth'))


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
