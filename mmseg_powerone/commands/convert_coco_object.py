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
import os
import sys

from ..dataset_converters.coco_object import convert_split
from .cli import tool_parser


def convert_coco_object(argv=None):
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
