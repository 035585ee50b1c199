"""Segment images with class names given on the command line, and draw
what the model sees: a colour overlay with a legend, and a grid of per-class
attention heatmaps for each selected layer.

    python tools/demo.py IMAGE_OR_DIR --classes "circle, star, ring"
        [--background "grass/sand/water/snow"] [--config CONFIG]
        [--checkpoint CKPT] [--layers 0 2] [--examples DIR]
        [--out work_dirs/demo]

Classes are comma-separated, synonyms of one class joined by '/'. The
background class defaults to the config's (the first line of its class-name
file). Defaults to the embedded tiny BLIP, so it runs on a shapes image out
of the box. Writes OUT/<image>_overlay.png and OUT/<image>_heatmaps.png.

With ``--examples DIR`` (labelled images: NAME.jpg + NAME.png, or NAME.png +
NAME_mask.png, each mask a class-index map over --classes) the model first
adapts to them (``PowerOneInferencer.adapt``, one-shot tuning); the overlay
then shows the zero-shot and the adapted predictions side by side, and the
heatmaps are the adapted model's.
"""
import os
import os.path as osp
import sys
import time

import numpy as np

from .cli import tool_parser
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
    p.add_argument('--examples', default=None,
                   help='a folder of labelled examples (NAME.jpg + NAME.png, '
                   'or NAME.png + NAME_mask.png; masks are class-index maps '
                   'over --classes, 0 background, 255 ignored): adapt to them '
                   'first (one-shot tuning), then draw the zero-shot and the '
                   'adapted predictions side by side')
    p.add_argument('--epochs', type=int, default=None,
                   help="passes over the examples (default: the paper's 5)")
    p.add_argument('--out', default='work_dirs/demo')
    p.add_argument('--device', default='cpu')
    return p.parse_args(argv)


def split_names(text: str):
    return [[s.strip() for s in item.split('/')] for item in text.split(',')]


def example_pairs(folder: str):
    """(image, mask) paths in ``folder``: ``NAME.<image ext>`` with the mask
    ``NAME.png``, or ``NAME.<image ext>`` with ``NAME_mask.png``."""
    from ..datasets.example_list import IMAGE_EXTENSIONS
    if not osp.isdir(folder):
        raise ValueError(f'--examples {folder}: not a folder.')
    files = sorted(os.listdir(folder))
    masks = {osp.splitext(f)[0]: f for f in files if f.lower().endswith('.png')}
    pairs, unpaired = [], []
    for f in files:
        stem, ext = osp.splitext(f)
        if ext.lower() not in IMAGE_EXTENSIONS or stem.endswith('_mask'):
            continue
        mask = masks.get(stem + '_mask') or (
            masks.get(stem) if ext.lower() != '.png' else None)
        if mask is not None:
            pairs.append((osp.join(folder, f), osp.join(folder, mask)))
        elif not (ext.lower() == '.png' and any(
                osp.splitext(g)[0] == stem and g != f for g in files)):
            unpaired.append(f)
    lossy = [f for f in files if osp.splitext(f)[0].endswith('_mask')
             and osp.splitext(f)[1].lower() in ('.jpg', '.jpeg', '.webp')]
    if lossy:
        raise ValueError(
            f'--examples {folder}: {lossy[:5]} are masks in a lossy format, '
            'whose compression changes label values along every edge. Save '
            'each mask as PNG (NAME_mask.png).')
    if not pairs:
        raise ValueError(
            f'--examples {folder}: no (image, mask) pairs. Put each image '
            'beside its mask: NAME.jpg + NAME.png, or NAME.png + '
            'NAME_mask.png.')
    if unpaired:
        raise ValueError(
            f'--examples {folder}: no mask for {unpaired[:5]}. Give each its '
            'mask (NAME.png, or NAME_mask.png) or move it out.')
    return pairs


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

    from ..apis.inferencer import PowerOneInferencer
    layers = args.layers
    if layers is None and args.config is None and args.checkpoint is None:
        layers = [0, 2]
    inferencer = PowerOneInferencer(args.config, args.checkpoint,
                                    layers=layers, device=args.device)
    background = split_names(args.background)[0] if args.background else None
    classes = split_names(args.classes)
    inferencer.set_classes(classes, background)
    tuned = None
    if args.examples:
        try:
            pairs = example_pairs(args.examples)
        except ValueError as e:
            sys.exit(f'demo.py: error: {e}')
        start = time.perf_counter()
        try:
            tuned = inferencer.adapt(pairs, classes, background,
                                     epochs=args.epochs)
        except ValueError as e:  # a bad example: the message names the fix
            sys.exit(f'demo.py: error: {e}')
        print(f'[demo] adapted to {len(pairs)} example(s) in '
              f'{time.perf_counter() - start:.1f} s; layers '
              f'{tuned.model.layers}')
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
    shown_model = tuned or inferencer  # whose heatmaps are drawn
    for path in track(paths, description='demo') if len(paths) > 1 else paths:
        preds = [np.asarray(m(path)['predictions'])
                 for m in ([inferencer, tuned] if tuned else [inferencer])]
        maps, H, W = layer_heatmaps(shown_model, path)
        image = mmcv.imread(path, channel_order='rgb')
        image = cv2.resize(image, (W, H)) if image.shape[:2] != (H, W) else image
        preds = [resize_labels(p, (H, W)) if p.shape != (H, W) else p
                 for p in preds]
        stem, clash = names_out.name(path)
        if clash:
            print(f'[demo] {path} shares its file stem with {clash}: its '
                  f'pictures are {stem}_*.png')
        draw_overlay(image, preds, shown_names, palette,
                     osp.join(args.out, f'{stem}_overlay.png'),
                     titles=(['zero-shot', f'adapted ({len(pairs)} examples)']
                             if tuned else ['segmentation']))
        draw_heatmaps(image, maps, shown_model.model.layers, shown_names,
                      osp.join(args.out, f'{stem}_heatmaps.png'))
    listed = names if len(names) <= 12 else names[:12] + [
        f'... {len(names) - 12} more']
    print(f'[demo] {len(paths)} image(s), classes {listed}, layers '
          f'{inferencer.model.layers}: written to {args.out}')
