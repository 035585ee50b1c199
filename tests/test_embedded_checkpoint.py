"""The committed tiny BLIP: loads through BLIPAdapter, meets its gate."""
import json
import os

import pytest
import torch

from helpers import REPO

CKPT = os.path.join(REPO, 'checkpoints', 'blip-tiny-shapes')


def test_shipped_checkpoint_loads_through_blip_adapter():
    from mmseg_powerone.models import BLIPAdapter
    adapter = BLIPAdapter(pretrained=CKPT)
    assert adapter.patch_size == 8 and adapter.num_layers == 4
    size = sum(os.path.getsize(os.path.join(CKPT, f)) for f in os.listdir(CKPT))
    assert size < 20 * 2**20


def test_shipped_checkpoint_meets_its_presence_gate():
    with open(os.path.join(CKPT, 'pretrain_report.json')) as f:
        report = json.load(f)
    assert report['presence_auroc']['max']['mean'] >= 0.95
    assert report['wall_time_min'] <= 30


def test_zeroshot_config_builds_with_the_shipped_checkpoint():
    model = _build(os.path.join(REPO, 'configs', 'powerone',
                                'powerone_blip-tiny_zeroshot_shapes.py'))
    assert model.layer_selection == 'infoscore' and model.num_classes == 7
    with pytest.raises(RuntimeError, match='InfoScoreHook'):
        model.predict(torch.zeros(1, 3, 64, 64))


def _build(cfg_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS.build(Config.fromfile(cfg_path).model)
