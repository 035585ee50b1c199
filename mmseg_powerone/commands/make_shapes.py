"""Generate the embedded synthetic shapes dataset (mmseg layout).

    python tools/make_shapes.py --out data/shapes --seed 0 \
        --num-train 500 --num-val 200
"""
import sys

from ..shapes.dataset import write_dataset
from .cli import tool_parser


def make_shapes(argv=None):
    p = tool_parser(__doc__)
    p.add_argument('--out', default='data/shapes',
                   help='folder to write (must not exist or be empty)')
    p.add_argument('--seed', type=int, default=0,
                   help='generator seed: the same seed gives the same images')
    p.add_argument('--num-train', type=int, default=500,
                   help='training images (img_dir/train, ann_dir/train)')
    p.add_argument('--num-val', type=int, default=200,
                   help='validation images (img_dir/val, ann_dir/val)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace a non-empty --out')
    args = p.parse_args(argv)
    try:
        out = write_dataset(args.out, args.seed, args.num_train,
                            args.num_val, args.overwrite)
    except (ValueError, FileExistsError, PermissionError) as e:
        sys.exit(f'make_shapes.py: error: {e}')
    print(f'Wrote {args.num_train} train and {args.num_val} val images '
          f'(seed {args.seed}) to {out}')
