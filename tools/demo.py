"""Segment images with class names given on the command line, and draw
what the model sees: a colour overlay with a legend, and a grid of per-class
attention heatmaps for each selected layer.

    python tools/demo.py IMAGE_OR_DIR --classes "circle, star, ring"
        [--background "grass/sand/water/snow"] [--config CONFIG]
        [--checkpoint CKPT] [--layers 0 2] [--out work_dirs/demo]

Classes are comma-separated, synonyms of one class joined by '/'. The
background class defaults to the config's (the first line of its class-name
file). Defaults to the embedded tiny BLIP, so it runs on a shapes image out
of the box. Writes OUT/<image>_overlay.png and OUT/<image>_heatmaps.png.
"""
import os
import os.path as osp
import sys

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    from mmseg_powerone.utils.cli import tool_parser
    p = tool_parser(__doc__)
    p.add_argument('inputs', help='an image file or a folder of images')
    p.add_argument('--classes', required=True,
                   help='comma-separated class names; synonyms joined by "/"')
    p.add_argument('--background', help='background synonyms joined by "/" '
                   "(default: the config's background class)")
    p.add_argument('--config', default=None,
                   help='default: the embedded tiny BLIP training-free config')
    p.add_argument('--checkpoint', default=None,
                   help='e.g. a one-shot tuned checkpoint')
    p.add_argument('--layers', type=int, nargs='+',
                   help="layers, when the config's are chosen by InfoScore "
                   'and no checkpoint stores them (default for the embedded '
                   'model: 0 2, its InfoScore choice on the shapes world)')
    p.add_argument('--out', default='work_dirs/demo')
    p.add_argument('--device', default='cpu')
    return p.parse_args(argv)


def split_names(text: str):
    return [[s.strip() for s in item.split('/')] for item in text.split(',')]


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


def draw_overlay(image, pred, names, palette, path):
    """Image | image with class colours, and a legend of the predicted
    classes (at most MAX_LEGEND; the others are counted)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    colours = np.asarray(palette, np.uint8)[pred]  # [H, W, 3]
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.6))
    axes[0].imshow(image)
    axes[0].set_title('image', fontsize=9)
    axes[1].imshow(image)
    axes[1].imshow(colours, alpha=0.55)
    axes[1].set_title('segmentation', fontsize=9)
    for ax in axes:
        ax.axis('off')
    present = sorted(set(np.unique(pred).tolist()))
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
    fig.tight_layout(rect=(0, min(0.5, 0.06 * rows + 0.04), 1, 1))
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

    from mmseg_powerone.utils import atomic_write
    with atomic_write(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=100)
    plt.close(fig)


def layer_heatmaps(inferencer, path):
    """Per-layer class maps of one image at its displayed size:
    [L, C, H, W]."""
    import torch
    import torch.nn.functional as F
    model = inferencer.model
    data = inferencer.pipeline(dict(img_path=path))
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
        False)
    H, W = batch['inputs'].shape[2:]
    inputs = model.pad_to_patches(batch['inputs'])
    with torch.no_grad():
        maps = model.layer_maps(inputs)['maps'][0]  # [L, C, h, w]
        maps = F.interpolate(maps, size=inputs.shape[2:], mode='bilinear',
                             align_corners=model.align_corners)
    return maps[:, :, :H, :W].numpy(), H, W  # [L, C, H, W]


def main(argv=None):
    args = parse_args(argv)
    if not osp.exists(args.inputs):
        sys.exit(f'demo.py: error: {args.inputs} does not exist (give an '
                 'image file or a folder of images).')
    sys.path.insert(0, REPO)
    import cv2
    import mmcv
    from rich.progress import track

    from mmseg_powerone.apis import PowerOneInferencer
    from mmseg_powerone.utils.labels import UniqueNames, resize_labels
    layers = args.layers
    if layers is None and args.config is None and args.checkpoint is None:
        layers = [0, 2]
    inferencer = PowerOneInferencer(args.config, args.checkpoint,
                                    layers=layers, device=args.device)
    background = split_names(args.background)[0] if args.background else None
    inferencer.set_classes(split_names(args.classes), background)
    paths = inferencer._inputs_to_list(args.inputs)
    names = ['/'.join(c) for c in inferencer.model.prompts.classes]
    palette = inferencer.model.dataset_meta['palette']
    os.makedirs(args.out, exist_ok=True)
    shown_names, numbered = displayable(names)
    if numbered:
        legend = osp.join(args.out, 'classes.txt')
        with open(legend, 'w', encoding='utf-8') as f:
            f.write(''.join(f'#{i}\t{n}\n' for i, n in enumerate(names)))
        print(f'[demo] the plotting font lacks characters of some class '
              f'names: the pictures number the classes; {legend} names them')
    names_out = UniqueNames()
    for path in track(paths, description='demo') if len(paths) > 1 else paths:
        out = inferencer(path)
        pred = np.asarray(out['predictions'])
        maps, H, W = layer_heatmaps(inferencer, path)
        image = mmcv.imread(path, channel_order='rgb')
        image = cv2.resize(image, (W, H)) if image.shape[:2] != (H, W) else image
        pred = resize_labels(pred, (H, W)) if pred.shape != (H, W) else pred
        stem, clash = names_out.name(path)
        if clash:
            print(f'[demo] {path} shares its file stem with {clash}: its '
                  f'pictures are {stem}_*.png')
        draw_overlay(image, pred, shown_names, palette,
                     osp.join(args.out, f'{stem}_overlay.png'))
        draw_heatmaps(image, maps, inferencer.model.layers, shown_names,
                      osp.join(args.out, f'{stem}_heatmaps.png'))
    listed = names if len(names) <= 12 else names[:12] + [
        f'... {len(names) - 12} more']
    print(f'[demo] {len(paths)} image(s), classes {listed}, layers '
          f'{inferencer.model.layers}: written to {args.out}')


if __name__ == '__main__':
    main()
