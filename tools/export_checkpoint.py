"""Write an mmengine checkpoint of a training-free segmentor, for tools that
require one (mmseg's stock tools/test.py, MMSegInferencer).

The checkpoint holds no VLM weights (they load from ``model.vlm.pretrained``
when the model is built), only the model's own state and meta, so it is tiny
even for BLIP-large.

    python tools/export_checkpoint.py CONFIG OUT.pth [--cfg-options k=v ...]
"""
import argparse

import mmseg_powerone
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmseg_powerone.utils import atomic_write
from mmseg_powerone.utils.cli import CFG_OPTIONS_HELP, CfgOptionsAction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('out', help='output .pth file')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help=CFG_OPTIONS_HELP)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    meta = dict(
        mmseg_powerone=mmseg_powerone.__version__,
        vlm=dict(cfg.model.vlm),
        class_names=[list(c) for c in model.prompts.classes],
        prompt_templates=model.prompt_templates,
        layers=model.layers)
    with atomic_write(args.out) as f:
        torch.save(dict(meta=meta, state_dict=model.state_dict()), f)
    source = cfg.model.vlm.get('pretrained', cfg.model.vlm.get('checkpoint'))
    print(f'Wrote {args.out} ({len(model.state_dict())} tensors; VLM weights '
          f'load from {source!r}).')


if __name__ == '__main__':
    main()
