import os
import warnings

import cv2
import numpy as np

import pytest
import torch

import mmseg_powerone  # noqa: F401  (compat + registration)
from mmseg_powerone.testing import save_random_blip

from helpers import REPO
WORDS = ['sky', 'grass', 'cat', 'dog', 'puppy', 'tree', 'hound']

warnings.filterwarnings('ignore', message='Fail to import')


@pytest.fixture(scope='session')
def tiny_blip_dir(tmp_path_factory):
    """A tiny random BLIP ITM model + tokenizer in Hugging Face layout."""
    out = tmp_path_factory.mktemp('tiny_blip')
    return save_random_blip(str(out), seed=0, words=WORDS)


@pytest.fixture(scope='session')
def tiny_albef_dir(tmp_path_factory):
    """A tiny random ALBEF checkpoint (official layout) + BERT tokenizer."""
    from mmseg_powerone.testing import save_random_albef
    return save_random_albef(str(tmp_path_factory.mktemp('tiny_albef')),
                             seed=0, words=WORDS)


@pytest.fixture(scope='session')
def tiny_llava_dir(tmp_path_factory):
    """A tiny random LLaVA in llava-hf layout."""
    from mmseg_powerone.testing import save_random_llava
    return save_random_llava(str(tmp_path_factory.mktemp('tiny_llava')),
                             seed=0, words=WORDS)


@pytest.fixture(params=['BLIPAdapter', 'ALBEFAdapter', 'LLaVAAdapter'])
def vlm_case(request):
    """(vlm config, segmentor kwargs) of each adapter on its tiny model:
    the generic adapter suite runs once per entry."""
    kind = request.param
    if kind == 'BLIPAdapter':
        return dict(type=kind, pretrained=request.getfixturevalue(
            'tiny_blip_dir')), {}
    if kind == 'ALBEFAdapter':
        d = request.getfixturevalue('tiny_albef_dir')
        return dict(type=kind, checkpoint=os.path.join(d, 'albef.pth'),
                    tokenizer=d, vision_heads=4, text_heads=4), {}
    # float32 also where CUDA is visible ('auto' would load bf16 there)
    return dict(type=kind, pretrained=request.getfixturevalue(
        'tiny_llava_dir'), torch_dtype='float32'), dict(prompt_templates=['{}'])


@pytest.fixture
def build_segmentor(tiny_blip_dir):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    def build(**kwargs):
        init_default_scope('mmseg')
        cfg = dict(type='VLMAttentionSegmentor',
                   vlm=dict(type='BLIPAdapter', pretrained=tiny_blip_dir),
                   class_names=['sky, grass, tree', 'cat', 'dog, puppy, hound'])
        cfg.update(kwargs)
        torch.manual_seed(0)
        return MODELS.build(cfg).eval()

    return build


CLASSES = ('background', 'cat', 'dog')


@pytest.fixture(scope='session')
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


@pytest.fixture(scope='session')
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


@pytest.fixture(scope='session')
def oneshot_config(tiny_config, tmp_path_factory):
    path = tmp_path_factory.mktemp('oneshot_cfg') / \
        'powerone_blip-tiny_oneshot_tiny.py'
    path.write_text(f"""
_base_ = [{tiny_config!r}]
model = dict(
    data_preprocessor=dict(size_divisor=32),
    train_cfg=dict(tune_embeddings='all', background_weight=0.5))
train_dataloader = dict(
    batch_size=1, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='OneShotDataset', shots=1, seed=0,
                 cache_dir={str(tmp_path_factory.mktemp('cache'))!r},
                 dataset={{{{_base_.test_dataloader.dataset}}}}))
optim_wrapper = dict(
    type='OptimWrapper', constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05),
    accumulative_counts=2)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4)
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1,
                                     max_keep_ckpts=-1))
""")
    return str(path)
