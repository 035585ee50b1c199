"""One-shot fine-tuning over several support draws: train and test per
draw, then report mean and std of mIoU, as the paper does.

Each draw d uses seed d for the support set (every ``OneShotDataset`` in the
config, so an evaluation side with ``exclude=True`` drops the same images)
and for training. The standard tools' commands run each step, each in its own process:

    tools/train.py CONFIG --work-dir WORK/draw_d
    tools/test.py  CONFIG WORK/draw_d/<last checkpoint> --work-dir WORK/draw_d/test

    python tools/oneshot_eval.py CONFIG [--draws 5] [--first-seed 0]
        [--work-dir DIR] [--jobs 1] [--threads T] [--fresh-processes]
        [--cfg-options k=v ...]

On Linux with a CPU-only torch those processes are forks of this one taken
after it has imported torch, mmengine and mmseg (and before it has computed
anything), which saves the ~5 s of imports per run; ``--fresh-processes``
starts a new interpreter for each instead (same results, slower), as does a
torch built for GPUs (a fork cannot use CUDA once its parent touched it).
The draws share one InfoScore cache (WORK/infoscore_cache): the ranking is
recomputed only where its inputs differ, e.g. when the evaluation side
excludes each draw's supports.

``--jobs N`` runs up to N draws at once. A CPU run's weights depend
on torch's thread count (it changes the order of float sums), which defaults
to the machine's core count; ``--threads T`` fixes it for every train/test
run, so ``--jobs 2 --threads 1`` gives the same numbers as ``--threads 1``
alone, on any machine.

Writes WORK/oneshot_eval.json and WORK/oneshot_eval.md (mean ± std over the
draws, sample std) once every draw has finished.
"""
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

from ..utils import atomic_write
from .cli import cfg_options_dict, tool_parser
from ..utils.report import markdown_table
from ..utils.resources import load_config
from ..models.utils.tuned_state import checkpoint_layers
from ..utils.io import last_checkpoint
from .processes import (can_fork, fork_call, fork_problem, preload,
                        run_tool, test_metrics)

METRICS = ('mIoU', 'mAcc', 'aAcc')


def parse_args(argv=None):
    p = tool_parser(__doc__)
    p.add_argument('config')
    p.add_argument('--draws', type=int, default=5,
                   help='support draws (seeds first-seed .. first-seed+draws-1)')
    p.add_argument('--first-seed', type=int, default=0)
    p.add_argument('--work-dir', help='default: work_dirs/<config name>_oneshot_eval')
    p.add_argument('--jobs', type=int, default=1,
                   help='draws run at the same time')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads of every train/test run (default: '
                   "torch's, i.e. the number of cores)")
    p.add_argument('--fresh-processes', action='store_true',
                   help='start a new Python for every train/test run instead '
                   'of forking a preloaded one (slower; same results)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value overrides for every train and test run')
    args = p.parse_args(argv)
    if args.draws < 1:
        p.error(f'--draws {args.draws}: give at least 1.')
    if args.jobs < 1:
        p.error(f'--jobs {args.jobs}: give at least 1.')
    if args.threads is not None and args.threads < 1:
        p.error(f'--threads {args.threads}: give at least 1.')
    return args


def seed_options(config, seed, options, cache_dir=None):
    """--cfg-options that make draw ``seed``: the support seed of every
    OneShotDataset in the config, and the training seed; with ``cache_dir``,
    also the InfoScore cache of an ``InfoScoreHook`` that names none."""
    cfg = load_config(config)
    if options:
        cfg.merge_from_dict(cfg_options_dict(options))
    keys = [f'{split}_dataloader.dataset.seed'
            for split in ('train', 'val', 'test')
            if (cfg.get(f'{split}_dataloader') or {}).get('dataset', {})
            .get('type') == 'OneShotDataset']
    if not any(k.startswith('train') for k in keys):
        sys.exit(f'{config}: train_dataloader.dataset is not a '
                 'OneShotDataset, so there are no support draws to vary. Use '
                 'a *_oneshot_* config.')
    opts = [f'{k}={seed}' for k in keys] + [f'randomness.seed={seed}']
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        if (cache_dir and hook.get('type') == 'InfoScoreHook'
                and not hook.get('cache_dir')):
            opts.append(f'custom_hooks.{i}.cache_dir={cache_dir}')
    return opts


def run_draw(args, seed, work):
    opts = seed_options(args.config, seed, args.cfg_options,
                        os.path.join(work, 'infoscore_cache')) + args.cfg_options
    fork = not args.fresh_processes
    draw_dir = os.path.join(work, f'draw_{seed}')
    print(f'[oneshot_eval] draw {seed}: training', flush=True)
    train_s = run_tool(['train', args.config, '--work-dir', draw_dir,
                        '--cfg-options'] + opts,
                       f'[oneshot_eval] training draw {seed}', fork,
                       args.threads)
    ckpt = last_checkpoint(draw_dir)
    print(f'[oneshot_eval] draw {seed}: testing {ckpt}', flush=True)
    run_tool(['test', args.config, ckpt, '--work-dir',
              os.path.join(draw_dir, 'test'), '--cfg-options'] + opts,
             f'[oneshot_eval] testing draw {seed}', fork, args.threads)
    metrics = test_metrics(os.path.join(draw_dir, 'test'))
    layers = checkpoint_layers(ckpt)[0]
    return dict(seed=seed, checkpoint=ckpt, train_seconds=round(train_s, 1),
                layers=layers, **{m: metrics[m] for m in METRICS})


def run_draws(args, work):
    """Every draw's result, in seed order; up to ``args.jobs`` at once, each
    in a fork of this process that writes WORK/draw_d/oneshot_draw.json
    (or, where runs are fresh interpreters, in a thread waiting on them)."""
    seeds = [args.first_seed + i for i in range(args.draws)]
    if args.jobs == 1 or len(seeds) == 1:
        return [run_draw(args, seed, work) for seed in seeds]
    if args.fresh_processes or not can_fork():
        return run_draws_in_threads(args, seeds, work)

    def result_file(seed):
        return os.path.join(work, f'draw_{seed}', 'oneshot_draw.json')

    pending, running, failed = list(seeds), {}, []
    while pending or running:
        while pending and len(running) < args.jobs and not failed:
            seed = pending.pop(0)

            def draw(seed=seed):  # its errors go to our stderr
                result = run_draw(args, seed, work)
                with atomic_write(result_file(seed), 'w') as f:
                    json.dump(result, f, indent=2)

            running[fork_call(draw)] = seed
        if not running:
            break
        pid, status = os.wait()
        seed = running.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            failed.append(seed)
    if failed:
        sys.exit(f'[oneshot_eval] draw {failed[0]} failed (its error is '
                 'printed above); no summary written.')
    draws = []
    for seed in seeds:
        with open(result_file(seed)) as f:
            draws.append(json.load(f))
    return draws


def run_draws_in_threads(args, seeds, work):
    """Every draw's result, in seed order, up to ``args.jobs`` at once in
    threads of this process, each waiting on fresh-interpreter tool runs; a
    failing draw cancels the draws not yet started and exits with its
    error once the running ones have finished."""
    pool = ThreadPoolExecutor(args.jobs)
    futures = [pool.submit(run_draw, args, seed, work) for seed in seeds]
    try:
        return [f.result() for f in futures]
    finally:
        pool.shutdown(cancel_futures=True)


def summarise(draws):
    out = {}
    for m in METRICS:
        values = [d[m] for d in draws]
        out[m] = dict(mean=statistics.mean(values),
                      std=statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def markdown(result):
    rows = [[d['seed'], f'{d["mIoU"]:.1f}', f'{d["mAcc"]:.1f}',
             f'{d["aAcc"]:.1f}', d['layers'], d['train_seconds']]
            for d in result['draws']]
    s = result['summary']
    rows.append(['**mean ± std**',
                 f'**{s["mIoU"]["mean"]:.1f} ± {s["mIoU"]["std"]:.1f}**',
                 f'{s["mAcc"]["mean"]:.1f} ± {s["mAcc"]["std"]:.1f}',
                 f'{s["aAcc"]["mean"]:.1f} ± {s["aAcc"]["std"]:.1f}', '', ''])
    return markdown_table(['draw (seed)', 'mIoU', 'mAcc', 'aAcc', 'layers',
                           'train s'], rows) + '\n'


def oneshot_eval(argv=None):
    """``tools/oneshot_eval.py``: parse ``argv``, run the draws, write and
    print the summary."""
    args = parse_args(argv)
    name = os.path.splitext(os.path.basename(args.config))[0]
    work = args.work_dir or os.path.join('work_dirs', f'{name}_oneshot_eval')
    if not args.fresh_processes:
        problem = fork_problem()
        if problem:
            print(f'[oneshot_eval] every run starts a fresh interpreter: '
                  f'{problem}.', flush=True)
        else:
            preload()
    draws = run_draws(args, work)
    result = dict(config=args.config, cfg_options=args.cfg_options,
                  threads=args.threads, jobs=args.jobs, draws=draws,
                  summary=summarise(draws),
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
