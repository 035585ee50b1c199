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

from ..infoscore.analysis import (compare_with_labels, evaluate_layer_sets,
                                  rank_layers)
from ..infoscore.report import format_table, plot
from ..evaluation import spearman
from ..utils import atomic_write
from ..utils.cli import (CFG_OPTIONS_HELP, CfgOptionsAction,
                         build_model_and_loader, tool_parser)


def parse_args(argv=None):
    p = tool_parser(__doc__)
    p.add_argument('config')
    p.add_argument('--num-images', type=int, default=100,
                   help='unlabeled images InfoScore ranks on')
    p.add_argument('--topk', type=int, default=None,
                   help="layers to keep (default: the model's topk)")
    p.add_argument('--with-labels', action='store_true',
                   help="also measure each layer's mIoU on the test split")
    p.add_argument('--out', default=None,
                   help='output directory (default work_dirs/rank_layers/CONFIG)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help=CFG_OPTIONS_HELP)
    return p.parse_args(argv)


def analyse(config, num_images=100, topk=None, with_labels=False,
            cfg_options=None, class_level=True):
    """InfoScore ranking and, with labels, per-layer and top-k mIoU and
    (unless ``class_level=False``, one more pass) the comparison with the
    labels' own InfoScore."""
    cfg, model, loader = build_model_and_loader(config, cfg_options)
    result = rank_layers(model, loader, num_images, topk or model.topk)
    if with_labels:
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
                                                        num_images)
    return result


def rank_layers_cli(argv=None):
    """``tools/rank_layers.py``: parse ``argv``, rank, print the table,
    write the JSON and the plot; returns the result."""
    args = parse_args(argv)
    if args.num_images < 1:
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
