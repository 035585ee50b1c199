"""Distil a teacher into a stock mmseg student on the embedded world.

For each teacher (the tiny BLIP training-free and, unless --no-oneshot,
one-shot-tuned): its val mIoU (tools/test.py), pseudo-labels of the
unlabeled train split (tools/pseudo_label.py), a student trained on them
(tools/train.py) and its val mIoU; then every model's images/s measured
side by side. Prints one table and writes WORK_DIR/distill.{json,md}.

    python tools/distill.py [--teacher CONFIG [CHECKPOINT]] [--data-root DIR]
        [--work-dir DIR] [--student CONFIG] [--rounds 2]

Each step runs the command that ``tools/train.py``, ``tools/test.py`` or
``tools/pseudo_label.py`` runs, in a process of its own (its log stays
there unless it fails).
"""
import glob
import json
import os
import os.path as osp
import time
from typing import List, Optional

from ..distill.confidence import ConfidenceRule
from ..distill.folder import read_record
from ..utils import atomic_write
from ..utils.io import last_checkpoint
from ..utils.report import markdown_table
from .cli import tool_parser
from .processes import run_tool, test_metrics
from .pseudo_label import add_rule_args, rule_from_args

THROUGHPUT_BATCH = 50


def data_options(root: str) -> List[str]:
    """``--cfg-options`` that point a student config's evaluation splits
    at ``root``."""
    return [f'test_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}']


def _option(value) -> str:
    """A ``--cfg-options`` value as the command line reads it back."""
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(map(str, value)) + ']'
    return str(value)


def _tool(args, what) -> float:
    """Run a command (``tools/<args[0]>.py``) in a process of its own;
    its ``[distill]`` lines are shown, its log only if it fails."""
    return run_tool(args, f'[distill] {what}', echo='[distill]')


def _test(config, checkpoint, work_dir, options) -> float:
    """``tools/test.py``; the mIoU it wrote."""
    args = ['test', config] + ([checkpoint] if checkpoint else []) + [
        '--work-dir', work_dir] + (['--cfg-options'] + options if options
                                   else [])
    _tool(args, f'tools/test.py {config}')
    return test_metrics(work_dir)['mIoU']


def _dumped_config(work_dir: str, config: str) -> str:
    """The config file the Runner wrote into ``work_dir`` (the student's
    config as the run used it, options merged)."""
    path = osp.join(work_dir, osp.basename(config))
    if not osp.isfile(path):
        raise FileNotFoundError(f'Training wrote no config {path}.')
    return path


def teacher_options(root: str, test_dir: str) -> dict:
    """Settings that make the teacher the model its test run scored: the
    data root and, where InfoScore chose the layers on the val images, those
    layers (ranked again on the train split they can differ, and the
    student's labels would come from another model than the teacher row)."""
    options = {'test_dataloader.dataset.data_root': root}
    chosen = osp.join(test_dir, 'infoscore.json')
    if osp.isfile(chosen):
        with open(chosen) as f:
            options['model.layers'] = json.load(f)['selected']
    return options


def distil_one(teacher, student_config, root, work, rule, seed, log,
               label='teacher'):
    """One row pair: teacher mIoU, its pseudo-labels, the student trained
    on them and its mIoU. ``teacher`` is (config, checkpoint or None)."""
    config, checkpoint = teacher
    row = dict(teacher_config=config, teacher_checkpoint=checkpoint)
    log(f'[distill] {label}: mIoU on the val split (tools/test.py)')
    test_dir = osp.join(work, 'teacher_test')
    # the layers are read from this test run's record alone: one left by an
    # earlier run in the same work dir (another teacher) must not be taken
    stale = osp.join(test_dir, 'infoscore.json')
    if osp.exists(stale):
        os.remove(stale)
    row['teacher_miou'] = _test(
        config, checkpoint, test_dir,
        [f'test_dataloader.dataset.data_root={root}'])
    options = teacher_options(root, test_dir)
    row['teacher_layers'] = options.get('model.layers')
    log(f'[distill] {label}: pseudo-labels of the train split '
        '(tools/pseudo_label.py)')
    pseudo = osp.join(work, 'pseudo_labels')
    args = ['pseudo_label', config] + ([checkpoint] if checkpoint else []) + [
        '--out', pseudo, '--data-config', student_config,
        '--class-quantile', str(rule.class_quantile),
        '--min-confidence', str(rule.min_confidence), '--cfg-options'] + [
        f'{k}={_option(v)}' for k, v in options.items()] + [
        '--data-cfg-options',
        f'train_dataloader.dataset.dataset.data_root={root}']
    row['pseudo_label_seconds'] = _tool(args, 'pseudo-labelling')
    row['pseudo_labels'] = pseudo
    record = read_record(pseudo)
    kept = record['kept']
    row['kept_share'] = sum(v['kept'] for v in kept.values()) / max(
        1, sum(v['total'] for v in kept.values()))
    log(f'[distill] {label}: training the student (tools/train.py '
        f'{student_config})')
    student_dir = osp.join(work, 'student')
    options = [f'train_dataloader.dataset.pseudo_dir={pseudo}',
               f'train_dataloader.dataset.dataset.data_root={root}',
               f'randomness.seed={seed}'] + data_options(root)
    row['student_train_seconds'] = _tool(
        ['train', student_config, '--work-dir', student_dir,
         '--cfg-options'] + options, 'training the student')
    row['student_checkpoint'] = last_checkpoint(student_dir)
    row['student_config'] = _dumped_config(student_dir, student_config)
    log(f'[distill] {label}: student mIoU on the val split (tools/test.py)')
    row['student_miou'] = _test(
        row['student_config'], row['student_checkpoint'],
        osp.join(work, 'student_test'), [])
    return row


def _model(config, checkpoint, options=None):
    """A config's model in eval mode with its checkpoint, if any."""
    from mmengine.runner import load_checkpoint
    from ..utils.resources import build_model_and_loader
    cfg, model, _ = build_model_and_loader(config, options)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return cfg, model


def measure_speed(rows, root, work, log, batch_size=THROUGHPUT_BATCH):
    """images/s of every teacher and student of ``rows`` on the val
    images, side by side in this process: mmseg's whole prediction path
    and the network alone."""
    from ..distill.throughput import (postprocess_images_per_s, preload_batches,
                             side_by_side)
    images = sorted(glob.glob(osp.join(root, 'img_dir', 'val', '*.png')))
    models = {}
    for i, row in enumerate(rows):
        # the teacher as its test run used it (same InfoScore layers)
        cfg, model = _model(row['teacher_config'], row['teacher_checkpoint'],
                            teacher_options(root, osp.join(work[i],
                                                           'teacher_test')))
        models[f'teacher{i}'] = (model, preload_batches(cfg, images,
                                                        batch_size))
        cfg, model = _model(row['student_config'], row['student_checkpoint'])
        models[f'student{i}'] = (model, preload_batches(cfg, images,
                                                        batch_size))
    log(f'[distill] images/s: {len(models)} models side by side on '
        f'{len(images)} val images, batch {batch_size}')
    whole = side_by_side(models)
    network = side_by_side(models, network_only=True)
    post = postprocess_images_per_s(*models['student0'])
    for i, row in enumerate(rows):
        row['teacher_images_per_s'] = whole[f'teacher{i}']
        row['student_images_per_s'] = whole[f'student{i}']
        row['teacher_network_images_per_s'] = network[f'teacher{i}']
        row['student_network_images_per_s'] = network[f'student{i}']
        row['postprocess_images_per_s'] = post


def table(rows) -> str:
    header = ['model', 'trained on', 'val mIoU', 'images/s',
              'images/s, network alone']
    body = []
    for row in rows:
        body.append([row['teacher_label'], row['teacher_trained_on'],
                     f'{row["teacher_miou"]:.1f}',
                     f'{row["teacher_images_per_s"]:.0f}',
                     f'{row["teacher_network_images_per_s"]:.0f}'])
        ratio = row['student_images_per_s'] / row['teacher_images_per_s']
        net = row['student_network_images_per_s'] / \
            row['teacher_network_images_per_s']
        body.append([row['student_label'],
                     f'its pseudo-labels ({100 * row["kept_share"]:.0f}% of '
                     'pixels kept), no label',
                     f'**{row["student_miou"]:.1f}** '
                     f'({row["student_miou"] - row["teacher_miou"]:+.1f})',
                     f'{row["student_images_per_s"]:.0f} ({ratio:.1f}x)',
                     f'{row["student_network_images_per_s"]:.0f} '
                     f'({net:.1f}x)'])
    return markdown_table(header, body) + (
        f"\n\nmmseg's post-processing alone (scores back to each image's "
        f'size, arg-max): {rows[0]["postprocess_images_per_s"]:.0f} '
        'images/s, the ceiling of any segmentor\'s whole prediction path '
        'here.')


def write_results(work_dir: str, rows, seconds: float, md: str) -> dict:
    """``WORK_DIR/distill.json``: the first row's keys at the top level
    (the contract), every row under ``rows``."""
    first = rows[0]
    result = {k: first[k] for k in (
        'teacher_miou', 'student_miou', 'teacher_images_per_s',
        'student_images_per_s', 'student_config', 'student_checkpoint')}
    result.update(rows=rows, seconds=seconds, table=md)
    with atomic_write(osp.join(work_dir, 'distill.json'), 'w') as f:
        json.dump(result, f, indent=2)
    with atomic_write(osp.join(work_dir, 'distill.md'), 'w') as f:
        f.write(md + '\n')
    return result


def run_chain(teachers, student_config: str, root: str, work_dir: str,
              rule: Optional[ConfidenceRule] = None, seed: int = 0,
              rounds: int = 1, log=print):
    """Every teacher of ``teachers`` (dicts: name, config, checkpoint or a
    ``train`` config that makes one, trained_on) through the chain; a
    second ``rounds`` lets the first student relabel for a new student."""
    rule = rule or ConfidenceRule()
    start = time.time()
    rows, works = [], []
    for spec in teachers:
        work = osp.join(work_dir, spec['name'])
        checkpoint = spec.get('checkpoint')
        if spec.get('train'):
            log(f'[distill] {spec["name"]}: training the teacher '
                f'(tools/train.py {spec["train"]})')
            tdir = osp.join(work, 'teacher_train')
            _tool(['train', spec['train'], '--work-dir', tdir,
                   '--cfg-options',
                   f'train_dataloader.dataset.dataset.data_root={root}',
                   f'test_dataloader.dataset.data_root={root}'],
                  'training the teacher')
            checkpoint = last_checkpoint(tdir)
        row = distil_one((spec['config'], checkpoint), student_config, root,
                         work, rule, seed, log, spec['name'])
        row.update(name=spec['name'], teacher_trained_on=spec['trained_on'],
                   teacher_label=f'teacher: {spec["name"]}',
                   student_label=f'student of {spec["name"]}')
        rows.append(row)
        works.append(work)
        if rounds > 1:
            name = f'{spec["name"]}, round 2'
            work2 = osp.join(work_dir, spec['name'] + '_round2')
            row2 = distil_one((row['student_config'],
                               row['student_checkpoint']), student_config,
                              root, work2, rule, seed, log, name)
            row2.update(name=name, teacher_trained_on='its teacher\'s '
                        'pseudo-labels, no label',
                        teacher_label=f'teacher: the student of '
                        f'{spec["name"]}',
                        student_label=f'student, round 2 ({spec["name"]})')
            rows.append(row2)
            works.append(work2)
    measure_speed(rows, root, works, log)
    md = table(rows)
    seconds = time.time() - start
    return write_results(work_dir, rows, seconds, md)


def default_teachers(zeroshot: str, zeroshot_checkpoint: Optional[str],
                     oneshot: Optional[str]):
    teachers = [dict(name='training-free', config=zeroshot,
                     checkpoint=zeroshot_checkpoint,
                     trained_on='no label (InfoScore layers)')]
    if oneshot:
        teachers.append(dict(name='one-shot', config=oneshot, train=oneshot,
                             trained_on='one labelled image per class'))
    return teachers


__all__ = ['data_options', 'default_teachers', 'distil_one', 'measure_speed',
           'run_chain', 'table', 'write_results']


DEFAULT_TEACHER = 'powerone/powerone_blip-tiny_zeroshot_shapes.py'
DEFAULT_ONESHOT = 'powerone/powerone_blip-tiny_oneshot_shapes.py'
DEFAULT_STUDENT = 'distill/distill_segformer-mit-tiny_blip-tiny_shapes.py'


def distill_parser():
    p = tool_parser(__doc__)
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
    add_rule_args(p)
    return p


def _ensure_world(parser, root, seed):
    """Make the embedded world at ``root`` when it is missing; refuse one
    of another seed or world version than asked for."""
    import json
    from ..shapes.dataset import write_dataset
    from ..shapes.world import WORLD_VERSION
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
    parser = distill_parser()
    args = parser.parse_args(argv)
    rule = rule_from_args(parser, args)
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
