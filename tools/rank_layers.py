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

import mmseg_powerone  # noqa: F401

from mmseg_powerone.engine.analysis import (compare_with_labels,
                                           evaluate_layer_sets, rank_layers)
from mmseg_powerone.evaluation import spearman
from mmseg_powerone.utils import atomic_write
from mmseg_powerone.utils.cli import (CFG_OPTIONS_HELP, CfgOptionsAction,
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


def format_table(r):
    rank = {l: i + 1 for i, l in enumerate(r['ranking'])}
    miou = r.get('per_layer_miou')
    if miou is not None:
        by_miou = sorted(r['layers'], key=lambda l: -miou[l])
        mrank = {l: i + 1 for i, l in enumerate(by_miou)}
    cl = r.get('class_level')
    head = '| layer | InfoScore | rank |'
    if miou:
        head += ' mIoU | mIoU rank |'
    if cl:
        head += (' class-level InfoScore | image entropy | '
                 'background share | L1 to labels |')
    lines = [head, '|' + '---|' * (head.count('|') - 1)]
    for l in r['layers']:
        sel = ' *' if l in r['selected'] else ''
        row = f'| {l}{sel} | {r["infoscore"][l]:.4f} | {rank[l]} |'
        if miou:
            row += f' {miou[l]:.2f} | {mrank[l]} |'
        if cl:
            row += (f' {cl["infoscore"][l]:.2f} |'
                    f' {cl["mean_image_entropy"][l]:.2f} |'
                    f' {cl["mean_marginal"][l][0]:.2f} |'
                    f' {cl["l1_to_labels"][l]:.2f} |')
        lines.append(row)
    if cl:
        gt = cl['labels']
        lines.append('| labels |' + ' |' * (4 if miou else 2) +
                     f' {gt["infoscore"]:.2f} | '
                     f'{gt["mean_image_entropy"]:.2f} | '
                     f'{gt["mean_marginal"][0]:.2f} | 0 |')
    lines.append(f'\nselected (top-{len(r["selected"])}): {r["selected"]} '
                 f'from {r["num_images"]} unlabeled images')
    if miou:
        lines.append(f'Spearman(InfoScore, mIoU) = {r["spearman"]:.3f}; '
                     f'top-{len(r["selected"])} ensemble mIoU = '
                     f'{r["topk_miou"]:.2f}')
    return '\n'.join(lines)


def plot(r, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    miou = r.get('per_layer_miou')
    fig, axes = plt.subplots(1, 2 if miou else 1, figsize=(9 if miou else 5, 3),
                             squeeze=False)
    names = [str(l) for l in r['layers']]
    colours = ['tab:orange' if l in r['selected'] else 'tab:blue'
               for l in r['layers']]
    axes[0, 0].bar(names, r['infoscore'], color=colours)
    axes[0, 0].set(title='InfoScore (no labels)', xlabel='layer')
    if miou:
        axes[0, 1].bar(names, miou, color=colours)
        axes[0, 1].set(title=f'mIoU of each layer alone '
                       f'(Spearman {r["spearman"]:.2f})', xlabel='layer')
    fig.tight_layout()
    with atomic_write(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=100)
    plt.close(fig)


def main(argv=None):
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


if __name__ == '__main__':
    main()
