"""One-shot tuning at call time: a user's own (image, mask) examples tune
the model the way ``tools/train.py`` does with a one-shot config.

.. code:: text

    PowerOneInferencer.adapt(examples, classes)
      read_examples()      check every pair; masks -> class-index maps
      write_examples()     images (as given) + index maps -> a JSON list
      adaptation_config()  the inferencer's config + the one-shot schedule,
                           an ``ExampleListDataset`` as the training set
      build_runner(cfg).train()   the same runner, loss, trainable
                                  parameters and hooks as the config route
      -> the final checkpoint (tuned parameters only), loaded into a new
         inferencer

The config route and this one share every step after the examples are
read: with the same supports, seed, schedule and thread count they end
with the same weights.
"""
import copy
import json
import os.path as osp
import tempfile
from typing import List, Optional, Sequence

import cv2
import mmcv
import numpy as np
import torch
from mmengine import fileio

from ..class_names import split_synonyms
from ..models.utils.postprocess import IGNORE_INDEX
from ..utils.io import atomic_write
from ..utils.labels import lossy_format
from ..utils.resources import load_config

# The reference schedule (configs/_base_/schedules/oneshot_5passes.py).
SCHEDULE = 'mmseg_powerone::_base_/schedules/oneshot_5passes.py'


def _name(i: int, item) -> str:
    image = item[0] if isinstance(item, (tuple, list)) and item else None
    where = f' ({image})' if isinstance(image, str) else ''
    return f'examples[{i}]{where}'


def _read_image(image, name: str) -> np.ndarray:
    """[H, W, 3] uint8 BGR (mmcv's order, as the inferencer reads arrays).
    A file is decoded as the training pipeline decodes it (mmcv, OpenCV):
    its EXIF orientation applied."""
    if isinstance(image, str):
        try:
            img = mmcv.imfrombytes(fileio.get(image))
        except Exception as e:  # noqa: BLE001  (any read failure)
            raise ValueError(f'{name}: cannot read the image ({e}). Give a '
                             'readable image file or an array.') from e
        if img is None:
            raise ValueError(f'{name}: not a readable image file.')
        return img
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(
            f'{name}: an image array must be uint8 [H, W, 3] (BGR, as mmcv '
            f'reads files) or [H, W]; got {img.dtype} {list(img.shape)}.')
    return img


def exif_orientation(path) -> int:
    """The EXIF orientation tag of an image file (1: as stored; 2-8: a
    viewer, and OpenCV when it decodes, flips or turns it), 1 when none."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001  (not an image PIL reads: no tag)
        return 1


def _read_mask(mask, name: str) -> np.ndarray:
    """[H, W] integer values of a mask file or array. Lossy files (JPEG,
    lossy WebP) are refused: their compression invents label values along
    every edge."""
    if isinstance(mask, str):
        try:
            data = fileio.get(mask)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f'{name}: cannot read the mask {mask} ({e}).') \
                from e
        fmt = lossy_format(data)
        if fmt:
            raise ValueError(
                f'{name}: the mask {mask} is a {fmt}, a lossy format: its '
                'compression changes label values along every edge (a 0/1 '
                'mask comes back with 2s and 3s, which would train classes '
                'that are not there). Save the mask as PNG (lossless), or '
                'read it yourself and give an array that holds only your '
                'label values (e.g. a binary mask as mask > 127).')
        try:
            m = mmcv.imfrombytes(data, flag='unchanged', backend='pillow')
        except Exception as e:  # noqa: BLE001
            raise ValueError(f'{name}: cannot read the mask {mask} ({e}).') \
                from e
    else:
        m = np.asarray(mask)
    if m.dtype == bool:
        m = m.astype(np.uint8)
    if m.ndim == 3 and m.shape[2] in (1, 3, 4) and (
            m.shape[2] == 1 or (m[..., :3] == m[..., :1]).all()):
        m = m[..., 0]  # a grey mask saved with colour channels
    if m.ndim == 2 and np.issubdtype(m.dtype, np.floating) and \
            np.isfinite(m).all() and (m == np.round(m)).all():
        m = m.astype(np.int64)  # 0.0 / 1.0 masks: whole numbers, as integers
    if m.ndim != 2 or not np.issubdtype(m.dtype, np.integer):
        if m.ndim == 3 and m.shape[2] in (3, 4):
            fix = (' Its channels differ: a colour-coded mask. Give class '
                   'indices instead (a palette-mode PNG, or an array of '
                   '0, 1, 2, ...).')
        elif m.ndim == 2:
            fix = (' Its values are not whole numbers (a soft mask or a '
                   'resized one?): give class indices, e.g. (mask > 0.5) '
                   'for a binary mask.')
        else:
            fix = ''
        raise ValueError(
            f'{name}: a mask must be one integer value per pixel [H, W] (a '
            f'class-index map or a binary mask); got {m.dtype} '
            f'{list(m.shape)}.{fix}')
    return m


def _size_hint(image, img, mask) -> str:
    """Why a mask may not fit its image: the image file's EXIF orientation,
    which OpenCV (and so the training pipeline) applies when it decodes."""
    if not isinstance(image, str):
        return ''
    turn = exif_orientation(image)
    if turn == 1:
        return ''
    turned = ' (its height and width swapped)' if turn >= 5 and \
        mask.shape == img.shape[1::-1] else ''
    return (f' The image file carries EXIF orientation {turn}: it is '
            f'decoded turned{turned}, as viewers show it and as training '
            'reads it, so the mask must be drawn on the image as shown. Turn '
            'the mask the same way, or save the image without the '
            'orientation tag (e.g. PIL.ImageOps.exif_transpose, then save).')


def _binary_label(mask, cls_index: int, name: str, cls) -> np.ndarray:
    """A binary mask of one class as a class-index map: 0 background;
    1 or 255 the class; with 1 as the class, 255 is mmseg's ignore value
    (e.g. an unlabelled border) and stays ignored."""
    values = set(np.unique(mask).tolist())
    if values <= {0, 255}:
        return np.where(mask == 255, cls_index, 0).astype(np.uint8)
    if values <= {0, 1, IGNORE_INDEX}:
        return np.where(mask == 1, cls_index,
                        np.where(mask == IGNORE_INDEX, IGNORE_INDEX, 0)
                        ).astype(np.uint8)
    shown = sorted(values)
    noisy = len(values) > 3 and min(values - {0}) < 16 and max(values) > 200
    hint = (' Many values near 0 and 255: a mask saved in a lossy format '
            '(JPEG)? Save it as PNG, or give mask > 127.' if noisy else '')
    raise ValueError(
        f'{name}: a binary mask of {cls!r} (an example with a class name) '
        'holds 0 (background) and 1 or 255 (the class), and with 1 also '
        f'255 (ignored, as mmseg); it holds {shown[:10]}'
        f'{" ..." if len(shown) > 10 else ""}.{hint} For several classes in '
        'one image, give an index map (0 background, i = classes[i - 1]) '
        'and no class name.')


def _noise_classes(label: np.ndarray, num_classes: int) -> List[int]:
    """Classes of an index map present only as thin slivers along the edges
    between other values (no pixel whose four neighbours share its value):
    what a lossy-compressed mask's noise looks like."""
    inner = np.zeros(label.shape, dtype=bool)
    core = label[1:-1, 1:-1]
    inner[1:-1, 1:-1] = ((core == label[:-2, 1:-1]) & (core == label[2:, 1:-1])
                         & (core == label[1:-1, :-2]) & (core == label[1:-1, 2:]))
    return [int(c) for c in np.unique(label)
            if 0 < c <= num_classes and not inner[label == c].any()]


def read_examples(examples, classes: Sequence) -> List[dict]:
    """Check the examples and turn each mask into a class-index map over
    ``[background] + classes``.

    An example is ``(image, mask)``, the mask an index map (0 background,
    ``i`` = ``classes[i - 1]``, 255 ignored), or ``(image, mask, name)``,
    the mask binary (non-zero = class ``name``, the rest background).
    Images and masks are paths or arrays. Every error names the example and
    the fix; nothing is written here.
    """
    if examples is None or len(examples) == 0:
        raise ValueError('examples is empty: give at least one (image, mask) '
                         'pair, one labelled image per class.')
    # a binary mask names its class by any of the class's synonyms
    lookup = {}
    for index, item in enumerate(classes):
        synonyms = split_synonyms(item, f'classes[{index}]') \
            if isinstance(item, str) else [str(n) for n in item]
        for n in synonyms:
            lookup[n.strip().lower()] = index + 1
    read = []
    for i, item in enumerate(examples):
        name = _name(i, item)
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError(
                f'{name}: an example is (image, mask) or (image, mask, '
                f'class name); got {type(item).__name__}.')
        img = _read_image(item[0], name)
        mask = _read_mask(item[1], name)
        if mask.shape != img.shape[:2]:
            raise ValueError(
                f'{name}: the mask is {mask.shape[0]} x {mask.shape[1]} but '
                f'the image is {img.shape[0]} x {img.shape[1]}: give the mask '
                'of this image, at its size.'
                + _size_hint(item[0], img, mask))
        if len(item) == 3:
            cls = str(item[2]).strip().lower()
            if cls not in lookup:
                raise ValueError(
                    f'{name} is an example of {item[2]!r}, which is not in '
                    f'classes {list(classes)}: add it to classes, or leave '
                    'the example out.')
            label = _binary_label(mask, lookup[cls], name, item[2])
        else:
            bad = (mask > len(classes)) & (mask != IGNORE_INDEX) | (mask < 0)
            if bad.any():
                raise ValueError(
                    f'{name}: the mask holds values '
                    f'{sorted(np.unique(mask[bad]).tolist())[:10]}, but '
                    f'classes has {len(classes)} names (values 0 = '
                    f'background, 1..{len(classes)}, 255 = ignore). Give '
                    'an index map over classes, or (image, mask, name) for '
                    'a binary mask of one class.')
            label = mask.astype(np.uint8)
            noise = _noise_classes(label, len(classes))
            if noise:
                listed = ', '.join(repr(list(classes)[c - 1]) for c in noise)
                raise ValueError(
                    f'{name}: {listed} appear{"s" if len(noise) == 1 else ""}'
                    ' only as thin slivers along the edges of other '
                    'classes, no pixel of it inside a region: the noise of a '
                    'lossily compressed mask (JPEG), not an object. Give the '
                    'mask as a PNG or an exact array; where a class really is '
                    'that thin, mark those pixels 255 (ignored).')
        read.append(dict(image=item[0], img=img, label=label, name=name))
    present = set()
    for r in read:
        present |= set(np.unique(r['label']).tolist())
    missing = [c for c in range(1, len(classes) + 1) if c not in present]
    if missing:
        listed = ', '.join(repr(list(classes)[c - 1]) for c in missing)
        raise ValueError(
            f'No example shows {listed}: every class needs pixels in at '
            'least one example mask. Add an example of it, or leave it out '
            'of classes.')
    return read


def write_examples(read: List[dict], folder: str) -> str:
    """Images given as files stay where they are (the pipeline reads them
    as the config route does); arrays and every label map are written as
    PNG (lossless) into ``folder``. Returns the JSON list's path."""
    items = []
    for i, r in enumerate(read):
        image = r['image']
        if not isinstance(image, str):
            image = osp.join(folder, f'{i:05d}_image.png')
            cv2.imwrite(image, r['img'])
        label = osp.join(folder, f'{i:05d}_label.png')
        cv2.imwrite(label, r['label'])
        items.append(dict(img_path=osp.abspath(image), seg_map_path=label))
    path = osp.join(folder, 'examples.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(items, f, indent=1)
    return path


def training_pipeline(test_pipeline) -> list:
    """The config's test pipeline, with the labels loaded right after the
    image so that every resize and padding applies to both."""
    steps = [copy.deepcopy(dict(t)) for t in test_pipeline]
    labels = [t for t in steps if t['type'] == 'LoadAnnotations']
    steps = [t for t in steps if t['type'] != 'LoadAnnotations']
    load = next((i for i, t in enumerate(steps)
                 if t['type'] in ('LoadImageFromFile', 'LoadImageFromNDArray',
                                  'InferencerLoader')), None)
    if load is None:
        raise ValueError('The config\'s test pipeline loads no image '
                         '(LoadImageFromFile): adapt() reads its examples '
                         'through it.')
    steps[load] = dict(steps[load], type='LoadImageFromFile')
    steps.insert(load + 1, labels[0] if labels else
                 dict(type='LoadAnnotations'))
    return steps


def _test_dataset(cfg):
    """The config's test dataset, unwrapped (a OneShotDataset holds it)."""
    dataset = cfg.test_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset
    return dataset


def _class_metainfo(class_spec) -> dict:
    """A dataset's metainfo for the model's classes (synonyms joined)."""
    return dict(classes=tuple(', '.join(c) for c in class_spec))


def adaptation_config(cfg, class_spec, layers, ann_file: str,
                      work_dir: str, num_examples: int, seed: int,
                      epochs: Optional[int], lr: Optional[float],
                      weight_decay: Optional[float],
                      accumulate: Optional[int], batch_size: int,
                      tune_embeddings: str, background_weight: float):
    """The training config of an adaptation: the inferencer's config with
    the examples as the training set and the one-shot schedule (the
    reference's unless given)."""
    cfg = copy.deepcopy(cfg)
    schedule = load_config(SCHEDULE)
    cfg.optim_wrapper = copy.deepcopy(schedule.optim_wrapper)
    cfg.train_cfg = copy.deepcopy(schedule.train_cfg)
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    if weight_decay is not None:
        cfg.optim_wrapper.optimizer.weight_decay = weight_decay
    if accumulate is not None:
        cfg.optim_wrapper.accumulative_counts = accumulate
    cfg.model.class_names = class_spec
    cfg.model.layers = 'infoscore' if layers is None else list(layers)
    cfg.model.train_cfg = dict(tune_embeddings=tune_embeddings,
                               background_weight=background_weight)
    cfg.train_dataloader = dict(
        batch_size=batch_size, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(type='ExampleListDataset', ann_file=ann_file,
                     data_prefix=dict(img_path='', seg_map_path=''),
                     metainfo=_class_metainfo(class_spec),
                     pipeline=training_pipeline(_test_dataset(cfg).pipeline)))
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.custom_hooks = [] if layers is not None else [dict(
        type='InfoScoreHook', num_images=num_examples, dataloader='train',
        cache=False)]
    # one checkpoint, at the end: the tuned weights
    cfg.setdefault('default_hooks', {})
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=True,
        interval=cfg.train_cfg.max_epochs, max_keep_ckpts=1)
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = work_dir
    cfg.resume = False
    cfg.load_from = None
    cfg.launcher = 'none'
    return cfg


def tuned_test_config(cfg, layers):
    """What a saved adaptation needs beside its checkpoint for
    ``tools/test.py`` and ``PowerOneInferencer(config, checkpoint)``: the
    model with its classes and tuned layers, no training parts."""
    cfg = copy.deepcopy(cfg)
    cfg.model.layers = list(layers)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper'):
        cfg[key] = None
    cfg.custom_hooks = []
    cfg.pop('work_dir', None)
    return cfg


def with_test_folder(cfg, folder: Optional[str]):
    """The adapted model's config testing on a folder of the user's own
    labelled images (``ImageMaskFolderDataset``, its classes the model's):
    the embedded world's test set, which the source config may name, holds
    other classes."""
    cfg = copy.deepcopy(cfg)
    cfg.test_dataloader.dataset = dict(
        type='ImageMaskFolderDataset',
        data_root=osp.abspath(folder) if folder else None,
        metainfo=_class_metainfo(cfg.model.class_names),
        pipeline=_test_pipeline_with_labels(_test_dataset(cfg).pipeline))
    return cfg


def _test_pipeline_with_labels(pipeline) -> list:
    """The test pipeline, loading the labels where mmseg's test pipelines
    do (after the resize: scored at each image's original size) when it
    does not load them already."""
    steps = [copy.deepcopy(dict(t)) for t in pipeline]
    if not any(t['type'] == 'LoadAnnotations' for t in steps):
        pack = next((i for i, t in enumerate(steps)
                     if t['type'] == 'PackSegInputs'), len(steps))
        steps.insert(pack, dict(type='LoadAnnotations'))
    return steps


def save_adaptation(checkpoint: dict, cfg, path: str) -> str:
    """Write the tuned checkpoint to ``path`` (the format of
    ``tools/train.py``'s checkpoints) and its config beside it
    (``<path without extension>.py``), each atomically. Returns the config
    path."""
    config_path = osp.splitext(path)[0] + '.py'
    with atomic_write(path, 'wb') as f:
        torch.save(checkpoint, f)
    with tempfile.TemporaryDirectory() as tmp:
        dumped = osp.join(tmp, 'config.py')
        cfg.dump(dumped)
        with open(dumped, encoding='utf-8') as src, \
                atomic_write(config_path, 'w') as dst:
            dst.write(src.read())
    return config_path
