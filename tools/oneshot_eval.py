"""One-shot fine-tuning over several support draws: train and test per
draw, then report mean and std of mIoU, as the paper does.

Each draw d uses seed d for the support set (every ``OneShotDataset`` in the
config, so an evaluation side with ``exclude=True`` drops the same images)
and for training. The standard tools run each step:

    tools/train.py CONFIG --work-dir WORK/draw_d
    tools/test.py  CONFIG WORK/draw_d/<last checkpoint> --work-dir WORK/draw_d/test

    python tools/oneshot_eval.py CONFIG [--draws 5] [--first-seed 0]
        [--work-dir DIR] [--cfg-options k=v ...]

Writes WORK/oneshot_eval.json and WORK/oneshot_eval.md (mean ± std over the
draws, sample std) once every draw has finished.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ('mIoU', 'mAcc', 'aAcc')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('--draws', type=int, default=5,
                   help='support draws (seeds first-seed .. first-seed+draws-1)')
    p.add_argument('--first-seed', type=int, default=0)
    p.add_argument('--work-dir', help='default: work_dirs/<config name>_oneshot_eval')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value overrides for every train and test run')
    args = p.parse_args(argv)
    if args.draws < 1:
        p.error(f'--draws {args.draws}: give at least 1.')
    return args


def seed_options(config, seed, options):
    """--cfg-options that make draw ``seed``: the support seed of every
    OneShotDataset in the config, and the training seed."""
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in
                             (o.split('=', 1) for o in options)})
    keys = [f'{split}_dataloader.dataset.seed'
            for split in ('train', 'val', 'test')
            if (cfg.get(f'{split}_dataloader') or {}).get('dataset', {})
            .get('type') == 'OneShotDataset']
    if not any(k.startswith('train') for k in keys):
        sys.exit(f'{config}: train_dataloader.dataset is not a '
                 'OneShotDataset, so there are no support draws to vary. Use '
                 'a *_oneshot_* config.')
    return [f'{k}={seed}' for k in keys] + [f'randomness.seed={seed}']


def run_tool(args, what):
    """Run ``tools/<args[0]> args[1:]`` in a fresh process; exit with its
    output's tail, prefixed by ``what``, if it fails. Returns seconds."""
    cmd = [sys.executable, os.path.join(REPO, 'tools', args[0])] + args[1:]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f'{what} failed ({" ".join(cmd)}):\n'
                 f'{(proc.stdout + proc.stderr)[-3000:]}')
    return time.perf_counter() - start


def last_checkpoint(work_dir):
    path = os.path.join(work_dir, 'last_checkpoint')
    if not os.path.isfile(path):
        sys.exit(f'[oneshot_eval] training wrote no checkpoint in {work_dir}.')
    with open(path) as f:
        return f.read().strip()


def tuned_layers(checkpoint):
    import torch

    import mmseg_powerone  # noqa: F401  (safe loading of mmengine checkpoints)
    from mmseg_powerone.models.segmentor import decode_info
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    return decode_info(state['state_dict']['_extra_state'])['layers']


def test_metrics(work_dir):
    """The metrics JSON of the newest tools/test.py run in ``work_dir``."""
    files = sorted(glob.glob(os.path.join(work_dir, '*', '*.json')),
                   key=os.path.getmtime)
    if not files:
        sys.exit(f'tools/test.py wrote no metrics in {work_dir}.')
    with open(files[-1]) as f:
        return json.load(f)


def run_draw(args, seed, work):
    opts = seed_options(args.config, seed, args.cfg_options) + args.cfg_options
    draw_dir = os.path.join(work, f'draw_{seed}')
    print(f'[oneshot_eval] draw {seed}: training', flush=True)
    train_s = run_tool(['train.py', args.config, '--work-dir', draw_dir,
                        '--cfg-options'] + opts,
                       f'[oneshot_eval] training draw {seed}')
    ckpt = last_checkpoint(draw_dir)
    print(f'[oneshot_eval] draw {seed}: testing {ckpt}', flush=True)
    run_tool(['test.py', args.config, ckpt, '--work-dir',
              os.path.join(draw_dir, 'test'), '--cfg-options'] + opts,
             f'[oneshot_eval] testing draw {seed}')
    metrics = test_metrics(os.path.join(draw_dir, 'test'))
    layers = tuned_layers(ckpt)
    return dict(seed=seed, checkpoint=ckpt, train_seconds=round(train_s, 1),
                layers=layers, **{m: metrics[m] for m in METRICS})


def summarise(draws):
    out = {}
    for m in METRICS:
        values = [d[m] for d in draws]
        out[m] = dict(mean=statistics.mean(values),
                      std=statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def markdown(result):
    lines = ['| draw (seed) | mIoU | mAcc | aAcc | layers | train s |',
             '|---|---|---|---|---|---|']
    for d in result['draws']:
        lines.append(f'| {d["seed"]} | {d["mIoU"]:.1f} | {d["mAcc"]:.1f} | '
                     f'{d["aAcc"]:.1f} | {d["layers"]} | {d["train_seconds"]} |')
    s = result['summary']
    lines.append(f'| **mean ± std** | **{s["mIoU"]["mean"]:.1f} ± '
                 f'{s["mIoU"]["std"]:.1f}** | {s["mAcc"]["mean"]:.1f} ± '
                 f'{s["mAcc"]["std"]:.1f} | {s["aAcc"]["mean"]:.1f} ± '
                 f'{s["aAcc"]["std"]:.1f} | | |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmseg_powerone.utils import atomic_write
    name = os.path.splitext(os.path.basename(args.config))[0]
    work = args.work_dir or os.path.join('work_dirs', f'{name}_oneshot_eval')
    draws = [run_draw(args, args.first_seed + i, work)
             for i in range(args.draws)]
    result = dict(config=args.config, cfg_options=args.cfg_options,
                  draws=draws, summary=summarise(draws),
                  std='sample standard deviation over draws')
    os.makedirs(work, exist_ok=True)
    with atomic_write(os.path.join(work, 'oneshot_eval.json'), 'w') as f:
        json.dump(result, f, indent=2)
    table = markdown(result)
    with atomic_write(os.path.join(work, 'oneshot_eval.md'), 'w') as f:
        f.write(f'One-shot fine-tuning, {len(draws)} support draws: '
                f'`{args.config}`\n\n' + table)
    print(table, end='')
    s = result['summary']['mIoU']
    print(f'[oneshot_eval] mIoU {s["mean"]:.1f} ± {s["std"]:.1f} over '
          f'{len(draws)} draws; written to {work}/oneshot_eval.{{json,md}}')


if __name__ == '__main__':
    main()
