"""Label a split's images with a teacher, for a student to train on.

The teacher is any segmentor config (training-free, a one-shot or adapt()
checkpoint, or a stock mmseg model such as an earlier student). The split's
own labels are never read. Writes mmseg label PNGs (16-bit beyond 256
classes) to --out, 255 where the confidence rule ignores a pixel, and a
record of the teacher and the images; an interrupted run continues where
it stopped, and a folder of another teacher or other images is refused.

    python tools/pseudo_label.py CONFIG [CHECKPOINT] --out DIR [--split train]
        [--data-config CONFIG] [--class-quantile 0.5] [--min-confidence 0]
        [--cfg-options k=v ...] [--launcher pytorch]
"""
import os
import sys

from ..distill.confidence import ConfidenceRule
from .cli import CfgOptionsAction, tool_parser


def add_rule_args(parser):
    rule = ConfidenceRule()
    parser.add_argument(
        '--class-quantile', type=float, default=rule.class_quantile,
        help="ignore (255) each class's least confident pixels up to this "
        "share of the class's pixels over the split (0 keeps all)")
    parser.add_argument(
        '--min-confidence', type=float, default=rule.min_confidence,
        help='also ignore pixels whose teacher probability is under this '
        '(0: no floor)')


def rule_from_args(parser, args) -> ConfidenceRule:
    try:
        return ConfidenceRule(class_quantile=args.class_quantile,
                              min_confidence=args.min_confidence)
    except ValueError as e:
        parser.error(str(e))


def pseudo_label_parser():
    p = tool_parser(__doc__)
    p.add_argument('config', help='the teacher config (a file or a shipped '
                   "'mmseg_powerone::' name)")
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='the teacher checkpoint (optional for training-free '
                   'teachers)')
    p.add_argument('--out', required=True, help='the pseudo-label folder')
    p.add_argument('--split', default='train',
                   help="the split to label: the data config's "
                   '{split}_dataloader')
    p.add_argument('--data-config', default=None,
                   help='the config whose --split dataloader lists the images '
                   "(default: the teacher's; a training-free config has no "
                   'train split, so give the student config)')
    add_rule_args(p)
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help="override the teacher config's settings, key=value")
    p.add_argument('--data-cfg-options', nargs='+', action=CfgOptionsAction,
                   help="override the data config's settings, key=value")
    p.add_argument('--launcher', default='none',
                   choices=['none', 'pytorch', 'slurm', 'mpi'],
                   help='job launcher (shards the images across processes)')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p


def pseudo_label_command(argv=None):
    """``tools/pseudo_label.py``; returns the folder's record."""
    from ..distill.pseudo_label import pseudo_label
    parser = pseudo_label_parser()
    args = parser.parse_args(argv)
    rule = rule_from_args(parser, args)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    try:
        return pseudo_label(args.config, args.checkpoint, args.out,
                            split=args.split, data_config=args.data_config,
                            rule=rule, launcher=args.launcher,
                            cfg_options=args.cfg_options,
                            data_cfg_options=args.data_cfg_options)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'pseudo_label.py: error: {e}')
