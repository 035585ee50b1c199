"""Write COCO-Object label maps from the COCO 2017 instance annotations.

    python tools/convert_coco_object.py data/coco [--splits val2017] \
        [--out data/coco] [--crowd label|ignore] [--overwrite]

Reads COCO/annotations/instances_{split}.json and writes
OUT/annotations/{split}/{image stem}_instanceTrainIds.png (0 background,
1..80 the thing classes in category-id order, 255 ignored), which
COCOObjectDataset reads next to the images in OUT/images/{split}/ (move or
link COCO's {split}/ image folder there). Each split is written to a
temporary folder and renamed when complete, so an interrupted run leaves
nothing half-written.
"""
import json
import os
import shutil
import sys
import tempfile
from collections import defaultdict

import cv2

from mmseg_powerone.datasets.coco_object import (SEG_MAP_SUFFIX,
                                                 category_labels, label_map)
from mmseg_powerone.utils.cli import tool_parser


def convert_split(coco_root, split, out, crowd='label', overwrite=False,
                  progress=True):
    """Convert one split; returns the number of label maps written."""
    ann_file = os.path.join(coco_root, 'annotations', f'instances_{split}.json')
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(
            f'{ann_file} not found: download the COCO 2017 annotations '
            '(annotations_trainval2017.zip) and unpack them under '
            f'{os.path.join(coco_root, "annotations")}.')
    dest = os.path.join(out, 'annotations', split)
    if os.path.isdir(dest) and os.listdir(dest) and not overwrite:
        raise FileExistsError(f'{dest} exists and is not empty; pass '
                              '--overwrite to replace it.')
    with open(ann_file) as f:
        coco = json.load(f)
    labels = category_labels(coco['categories'])
    per_image = defaultdict(list)
    for ann in coco['annotations']:
        if ann['category_id'] not in labels:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")} has '
                             f'unknown category_id {ann["category_id"]}.')
        per_image[ann['image_id']].append(ann)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{split}.', dir=os.path.dirname(dest))
    try:
        images = coco['images']
        for i, image in enumerate(images):
            lab = label_map(image, per_image.get(image['id'], []), labels,
                            crowd)
            stem = os.path.splitext(image['file_name'])[0]
            if not cv2.imwrite(os.path.join(tmp, stem + SEG_MAP_SUFFIX), lab):
                raise OSError(f'could not write the label map of {stem}')
            if progress and (i + 1) % 500 == 0:
                print(f'{split}: {i + 1}/{len(images)}', flush=True)
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    img_dir = os.path.join(out, 'images', split)
    if not os.path.isdir(img_dir):
        print(f'note: {img_dir} does not exist; COCOObjectDataset reads the '
              f'images from there (move or link COCO\'s {split}/ folder).')
    return len(images)


def main(argv=None):
    p = tool_parser(__doc__)
    p.add_argument('coco_root', help='folder holding annotations/instances_*.json')
    p.add_argument('--splits', nargs='+', default=['val2017'])
    p.add_argument('--out', default=None, help='default: coco_root')
    p.add_argument('--crowd', choices=['label', 'ignore'], default='label',
                   help="crowd regions: their class (default, as the "
                   "COCO-Stuff-derived version) or 255")
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    out = args.out or args.coco_root
    for split in args.splits:
        try:
            n = convert_split(args.coco_root, split, out, args.crowd,
                              args.overwrite)
        except (FileNotFoundError, FileExistsError, ValueError, OSError) as e:
            sys.exit(f'convert_coco_object.py: error: {e}')
        print(f'{split}: wrote {n} label maps to '
              f'{os.path.join(out, "annotations", split)}')


if __name__ == '__main__':
    main()
