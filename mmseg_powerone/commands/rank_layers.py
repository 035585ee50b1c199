"""Rank a VLM's attention layers by InfoScore (no labels); with labels,
compare the ranking with each layer's mIoU.

    python tools/rank_layers.py CONFIG [--num-images N] [--with-labels]
        [--out DIR] [--cfg-options k=v ...]

Prints a table per layer, and with --with-labels the Spearman correlation
between InfoScore and mIoU, the top-k ensemble's mIoU, and InfoScore at
class level next to the labels' own (``class_level`` in the JSON: a layer
far above the labels puts its mass where they do not); writes
DIR/infoscore.json and DIR/rank_layers.png.
"""
import json
import os
import sys

from ..engine.hooks.infoscore_hook import (InfoScoreHook,
                                           config_infoscore_hook, hook_split)
from ..infoscore.analysis import compare_with_labels, evaluate_layer_sets
from ..infoscore.report import format_table, plot
from ..evaluation import spearman
from ..utils import atomic_write
from ..utils.resources import build_model_and_loader, load_config
from .cli import CFG_OPTIONS_HELP, CfgOptionsAction, tool_parser


def parse_args(argv=None):
    p = tool_parser(__doc__)
    p.add_argument('config')
    p.add_argument('--num-images', type=int, default=None,
                   help="unlabeled images InfoScore ranks on (default: the "
                   "config's InfoScoreHook's, else 100)")
    p.add_argument('--topk', type=int, default=None,
                   help="layers to keep (default: the model's topk)")
    p.add_argument('--with-labels', action='store_true',
                   help="also measure each layer's mIoU on the test split")
    p.add_argument('--out', default=None,
                   help='output directory (default work_dirs/rank_layers/CONFIG)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help=CFG_OPTIONS_HELP)
    return p.parse_args(argv)


def analyse(config, num_images=None, topk=None, with_labels=False,
            cfg_options=None, class_level=True):
    """InfoScore ranking as the config's ``InfoScoreHook`` makes it (its
    images and settings; ``num_images`` and ``topk`` override them, a
    config without the hook ranks 100 test images) and, with labels,
    per-layer and top-k mIoU and (unless ``class_level=False``, one more
    pass) the comparison with the labels' own InfoScore."""
    cfg = load_config(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    try:
        hook = config_infoscore_hook(cfg, num_images=num_images, topk=topk,
                                     cache=False)
    except ValueError:  # a config with fixed layers: rank them all the same
        hook = InfoScoreHook(num_images=num_images or 100, topk=topk,
                             cache=False)
    cfg, model, loader = build_model_and_loader(cfg, split=hook_split(hook))
    result = hook.rank(model, loader)
    if with_labels:
        if hook_split(hook) != 'test':
            _, _, loader = build_model_and_loader(cfg, split='test')
        sets = {str(l): [l] for l in result['layers']}
        sets['topk'] = result['selected']
        metrics = evaluate_layer_sets(model, loader, sets,
                                      loader.dataset.metainfo)
        result['per_layer_miou'] = [float(metrics[str(l)]['mIoU'])
                                    for l in result['layers']]
        result['topk_miou'] = float(metrics['topk']['mIoU'])
        result['spearman'] = spearman(result['infoscore'],
                                      result['per_layer_miou'])
        if class_level:
            result['class_level'] = compare_with_labels(model, loader,
                                                        hook.num_images)
    return result


def rank_layers_cli(argv=None):
    """``tools/rank_layers.py``: parse ``argv``, rank, print the table,
    write the JSON and the plot; returns the result."""
    args = parse_args(argv)
    if args.num_images is not None and args.num_images < 1:
        sys.exit(f'rank_layers.py: error: --num-images must be >= 1, got '
                 f'{args.num_images}')
    out = args.out or os.path.join(
        'work_dirs', 'rank_layers',
        os.path.splitext(os.path.basename(args.config))[0])
    r = analyse(args.config, args.num_images, args.topk, args.with_labels,
                args.cfg_options)
    print(format_table(r))
    with atomic_write(os.path.join(out, 'infoscore.json'), 'w') as f:
        json.dump(r, f, indent=2)
    plot(r, os.path.join(out, 'rank_layers.png'))
    print(f'wrote {out}/infoscore.json and {out}/rank_layers.png')
    return r
