"""The one writer of InfoScore rankings: the table the hook logs and
``tools/rank_layers.py`` prints, and the bar chart both save."""
from ..utils.io import atomic_write
from ..utils.report import markdown_table


def format_table(r: dict) -> str:
    """Markdown table of a ranking (``rank_layers``' result): InfoScore and
    rank per layer, selected ones starred; with the labels, each layer's
    mIoU and rank, and the class-level comparison when present."""
    rank = {l: i + 1 for i, l in enumerate(r['ranking'])}
    miou = r.get('per_layer_miou')
    if miou is not None:
        by_miou = sorted(r['layers'], key=lambda l: -miou[l])
        mrank = {l: i + 1 for i, l in enumerate(by_miou)}
    cl = r.get('class_level')
    header = ['layer', 'InfoScore', 'rank']
    if miou:
        header += ['mIoU', 'mIoU rank']
    if cl:
        header += ['class-level InfoScore', 'image entropy',
                   'background share', 'L1 to labels']
    rows = []
    for l in r['layers']:
        row = [f'{l} *' if l in r['selected'] else l,
               f'{r["infoscore"][l]:.4f}', rank[l]]
        if miou:
            row += [f'{miou[l]:.2f}', mrank[l]]
        if cl:
            row += [f'{cl["infoscore"][l]:.2f}',
                    f'{cl["mean_image_entropy"][l]:.2f}',
                    f'{cl["mean_marginal"][l][0]:.2f}',
                    f'{cl["l1_to_labels"][l]:.2f}']
        rows.append(row)
    if cl:
        gt = cl['labels']
        rows.append(['labels'] + [''] * (4 if miou else 2) + [
            f'{gt["infoscore"]:.2f}', f'{gt["mean_image_entropy"]:.2f}',
            f'{gt["mean_marginal"][0]:.2f}', 0])
    lines = [markdown_table(header, rows)]
    lines.append(f'\nselected (top-{len(r["selected"])}): {r["selected"]} '
                 f'from {r["num_images"]} unlabeled images')
    if miou:
        lines.append(f'Spearman(InfoScore, mIoU) = {r["spearman"]:.3f}; '
                     f'top-{len(r["selected"])} ensemble mIoU = '
                     f'{r["topk_miou"]:.2f}')
    return '\n'.join(lines)


def plot(r: dict, path: str) -> None:
    """Bar chart of InfoScore per layer (selected ones orange) and, with the
    labels, of each layer's mIoU beside it; written atomically as PNG."""
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
    axes[0, 0].set(title=f'InfoScore ({r["num_images"]} unlabeled images)',
                   xlabel='attention layer')
    if miou:
        axes[0, 1].bar(names, miou, color=colours)
        axes[0, 1].set(title=f'mIoU of each layer alone '
                       f'(Spearman {r["spearman"]:.2f})', xlabel='layer')
    fig.tight_layout()
    with atomic_write(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=100)
    plt.close(fig)
