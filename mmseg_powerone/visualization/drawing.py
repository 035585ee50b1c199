"""Pictures of what the model sees: a colour overlay of a prediction with a
legend, and a grid of per-class attention heatmaps for each layer."""
import numpy as np

from ..utils import atomic_write


MAX_LEGEND = 24     # legend entries drawn; the rest are counted
MAX_HEATMAPS = 8    # class columns of the heatmap grid


def displayable(names):
    """The names as drawn: unchanged when the plotting font has every
    character; otherwise class numbers ("#3"), and True, so that the caller
    writes a legend file (non-Latin names drew as empty boxes)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    chars = set(FT2Font(font_manager.findfont(
        font_manager.FontProperties())).get_charmap())
    if all(ord(ch) in chars for n in names for ch in n if not ch.isspace()):
        return list(names), False
    return [f'#{i}' for i in range(len(names))], True


def draw_overlay(image, pred, names, palette, path,
                 titles=('segmentation', )):
    """Image | the image with class colours (one panel per prediction when
    ``pred`` is a list, titled by ``titles``), and a legend of the
    predicted classes (at most MAX_LEGEND; the others are counted)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    preds = list(pred) if isinstance(pred, (list, tuple)) else [pred]
    fig, axes = plt.subplots(1, 1 + len(preds),
                             figsize=(3.5 * (1 + len(preds)), 3.6))
    axes[0].imshow(image)
    axes[0].set_title('image', fontsize=9)
    for ax, p, title in zip(axes[1:], preds, titles):
        ax.imshow(image)
        ax.imshow(np.asarray(palette, np.uint8)[p], alpha=0.55)  # [H, W, 3]
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis('off')
    present = sorted(set().union(*(np.unique(p).tolist() for p in preds)))
    shown = present[:MAX_LEGEND]
    handles = [Patch(color=np.asarray(palette[c]) / 255, label=names[c])
               for c in shown]
    if len(names) > len(shown):
        handles.append(Patch(color='white', label=(
            f'+{len(present) - len(shown)} more predicted, '
            if len(present) > len(shown) else '')
            + f'{len(names) - len(present)} not predicted'))
    fig.legend(handles=handles, loc='lower center',
               ncol=min(4, len(handles)), fontsize=8, frameon=False)
    rows = -(-len(handles) // 4)
    fig.tight_layout(rect=(0, min(0.5, 0.06 * rows + 0.04), 1, 0.97))
    save(fig, path)


def draw_heatmaps(image, maps, layers, names, path):
    """Rows: selected layers; columns: at most MAX_HEATMAPS classes (the
    ones whose maps are strongest, background first); each the layer's
    class map (softmax over prompts x ITM) over the image, on one colour
    scale shown beside the grid."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    L, C = maps.shape[:2]
    strongest = np.argsort(-maps.max(axis=(0, 2, 3)), kind='stable')
    cols = sorted(strongest[:MAX_HEATMAPS].tolist())
    fig, axes = plt.subplots(L, len(cols), squeeze=False,
                             figsize=(1.6 * len(cols) + 0.8, 1.7 * L + 0.3))
    grey = image.mean(axis=2)
    vmax = float(maps.max()) or 1.0
    for i in range(L):
        for j, c in enumerate(cols):
            ax = axes[i][j]
            ax.imshow(grey, cmap='gray')
            shown = ax.imshow(maps[i, c], cmap='jet', alpha=0.5, vmin=0,
                              vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(names[c], fontsize=8)
            if j == 0:
                ax.set_ylabel(f'layer {layers[i]}', fontsize=8)
    fig.colorbar(shown, ax=axes, shrink=0.8, label='class map')
    if len(cols) < C:
        fig.suptitle(f'{len(cols)} of {C} classes (the strongest maps)',
                     fontsize=8)
    save(fig, path)


def save(fig, path):
    import matplotlib.pyplot as plt

    with atomic_write(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=100)
    plt.close(fig)
