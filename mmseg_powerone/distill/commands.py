"""The command lines of ``tools/pseudo_label.py`` and ``tools/distill.py``."""
import os
import os.path as osp
import sys

from ..utils.cli import CfgOptionsAction, tool_parser
from .confidence import ConfidenceRule

PSEUDO_LABEL_DOC = """Label a split's images with a teacher, for a student to train on.

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

DISTILL_DOC = """Distil a teacher into a stock mmseg student on the embedded world.

For each teacher (the tiny BLIP training-free and, unless --no-oneshot,
one-shot-tuned): its val mIoU (tools/test.py), pseudo-labels of the
unlabeled train split (tools/pseudo_label.py), a student trained on them
(tools/train.py) and its val mIoU; then every model's images/s measured
side by side. Prints one table and writes WORK_DIR/distill.{json,md}.

    python tools/distill.py [--teacher CONFIG [CHECKPOINT]] [--data-root DIR]
        [--work-dir DIR] [--student CONFIG] [--rounds 2]
"""

DEFAULT_TEACHER = 'powerone/powerone_blip-tiny_zeroshot_shapes.py'
DEFAULT_ONESHOT = 'powerone/powerone_blip-tiny_oneshot_shapes.py'
DEFAULT_STUDENT = 'distill/distill_segformer-mit-tiny_blip-tiny_shapes.py'


def _add_rule_args(parser):
    rule = ConfidenceRule()
    parser.add_argument(
        '--class-quantile', type=float, default=rule.class_quantile,
        help="ignore (255) each class's least confident pixels up to this "
        "share of the class's pixels over the split (0 keeps all)")
    parser.add_argument(
        '--min-confidence', type=float, default=rule.min_confidence,
        help='also ignore pixels whose teacher probability is under this '
        '(0: no floor)')


def _rule(parser, args) -> ConfidenceRule:
    try:
        return ConfidenceRule(class_quantile=args.class_quantile,
                              min_confidence=args.min_confidence)
    except ValueError as e:
        parser.error(str(e))


def pseudo_label_parser():
    p = tool_parser(PSEUDO_LABEL_DOC)
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
    _add_rule_args(p)
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
    from .pseudo_label import pseudo_label
    parser = pseudo_label_parser()
    args = parser.parse_args(argv)
    rule = _rule(parser, args)
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


def distill_parser():
    p = tool_parser(DISTILL_DOC)
    p.add_argument('--teacher', nargs='+', metavar='CONFIG [CHECKPOINT]',
                   default=None,
                   help='the teacher config and optional checkpoint '
                   f'(default: {DEFAULT_TEACHER}, training-free)')
    p.add_argument('--data-root', default='data/shapes',
                   help='the embedded world (made with --world-seed when '
                   'missing)')
    p.add_argument('--world-seed', type=int, default=None,
                   help='generator seed of the world at --data-root: made '
                   'with it when missing (default 0), checked when present')
    p.add_argument('--work-dir', default='work_dirs/distill')
    p.add_argument('--student', default=DEFAULT_STUDENT,
                   help='the student config')
    p.add_argument('--no-oneshot', action='store_true',
                   help='skip the one-shot-tuned teacher row')
    p.add_argument('--rounds', type=int, default=1, choices=[1, 2],
                   help='2: each student relabels the split for a second '
                   'student (self-training)')
    p.add_argument('--seed', type=int, default=0,
                   help="the student's training seed")
    _add_rule_args(p)
    return p


def _ensure_world(parser, root, seed):
    """Make the embedded world at ``root`` when it is missing; refuse one
    of another seed or world version than asked for."""
    import json
    from ..shapes.world import WORLD_VERSION, write_dataset
    meta = osp.join(root, 'meta.json')
    if not osp.isdir(osp.join(root, 'img_dir')):
        seed = 0 if seed is None else seed
        print(f'[distill] generating {root} (seed {seed})', flush=True)
        write_dataset(root, seed, 500, 200)
        return
    if not osp.isfile(meta):
        return  # a folder of the user's own, in the world's layout
    with open(meta) as f:
        found = json.load(f)
    if seed is not None and found.get('seed') != seed:
        parser.error(f'{root} holds the world of seed {found.get("seed")}, '
                     f'not --world-seed {seed}: give another --data-root.')
    if found.get('version') != WORLD_VERSION:
        parser.error(f'{root} holds an older version of the world '
                     f'({found.get("version")}, now {WORLD_VERSION}): remove '
                     'it or give another --data-root.')


def distill_command(argv=None):
    """``tools/distill.py``; returns the ``distill.json`` content."""
    from ..utils.resources import config_path
    from .chain import default_teachers, run_chain
    parser = distill_parser()
    args = parser.parse_args(argv)
    rule = _rule(parser, args)
    if args.teacher and len(args.teacher) > 2:
        parser.error('--teacher takes CONFIG [CHECKPOINT]')
    root = args.data_root
    _ensure_world(parser, root, args.world_seed)
    if args.teacher:
        config = config_path(args.teacher[0])
        checkpoint = args.teacher[1] if len(args.teacher) > 1 else None
        teachers = [dict(name=osp.splitext(osp.basename(config))[0],
                         config=config, checkpoint=checkpoint,
                         trained_on='(given)')]
    else:
        teachers = default_teachers(
            config_path(DEFAULT_TEACHER), None,
            None if args.no_oneshot else config_path(DEFAULT_ONESHOT))
    result = run_chain(teachers, config_path(args.student), root,
                       args.work_dir, rule=rule, seed=args.seed,
                       rounds=args.rounds)
    print('\n' + result['table'])
    print(f'\n[distill] {result["seconds"]:.0f} s; results in '
          f'{args.work_dir}/distill.{{json,md}}')
    return result
