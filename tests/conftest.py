import os
import warnings

import pytest
import torch

import mmseg_powerone  # noqa: F401  (compat + registration)
from mmseg_powerone.tiny_blip import save_random_blip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ['sky', 'grass', 'cat', 'dog', 'puppy', 'tree', 'hound']

warnings.filterwarnings('ignore', message='Fail to import')


@pytest.fixture(scope='session')
def tiny_blip_dir(tmp_path_factory):
    """A tiny random BLIP ITM model + tokenizer in Hugging Face layout."""
    out = tmp_path_factory.mktemp('tiny_blip')
    return save_random_blip(str(out), seed=0, words=WORDS)


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
