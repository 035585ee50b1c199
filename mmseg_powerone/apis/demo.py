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

from ..utils.cli import tool_parser
from ..utils.labels import UniqueNames, resize_labels
from ..visualization.drawing import displayable, draw_heatmaps, draw_overlay


def parse_args(argv=None):
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


def demo(argv=None):
    """``tools/demo.py``: parse ``argv``, segment every image, draw."""
    args = parse_args(argv)
    if not osp.exists(args.inputs):
        sys.exit(f'demo.py: error: {args.inputs} does not exist (give an '
                 'image file or a folder of images).')
    import cv2
    import mmcv
    from rich.progress import track

    from .inferencer import PowerOneInferencer
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

