"""The method end to end on the embedded world, in a few minutes on a CPU.

For each tiny VLM (``--vlms``; the tiny BLIP by default) and generator
seed: make the synthetic data if missing; rank the VLM's attention layers
by InfoScore (no labels) and, for the table, measure each layer alone; run
the training-free top-2 model through tools/test.py with and without
re-weighting by the matching score (ITM, or LLaVA's P(yes)); measure the
presence AUROC of that score. On each seed, one-shot fine-tuning over
several support draws (tools/oneshot_eval.py: tools/train.py then
tools/test.py per draw; draws run side by side, one per core, each with one
torch thread, so the numbers are the same on any core count). Prints one
table per VLM (a column per seed) and writes them to
WORK_DIR/results.{json,md}.

    python tools/quickstart.py [--vlms blip albef llava] [--seeds 0 1]
        [--oneshot-draws 5] [--jobs N] [--work-dir work_dirs/quickstart]
"""
import glob
import json
import os
import sys
import time

import numpy as np

from .rank_layers import analyse
from .processes import run_tool, test_metrics
from ..evaluation import presence_auroc
from ..infoscore.analysis import presence_scores
from ..utils import atomic_write
from ..utils.report import markdown_table
from .cli import cfg_options_dict, tool_parser
from ..utils.resources import build_model_and_loader, config_path
from ..shapes.dataset import write_dataset
from ..shapes.pretrain import ARCHES
from ..shapes.world import CLASSES, WORLD_VERSION


def _configs(vlm):
    """(training-free, one-shot) shapes configs of a tiny VLM."""
    return tuple(config_path(f'powerone/powerone_{vlm}-tiny_{setting}_shapes.py')
                 for setting in ('zeroshot', 'oneshot'))


# every tiny VLM the embedded world pretrains: display name -> configs and
# what its matching score is (the presence AUROC row)
VLMS = {arch.name: _configs(key) for key, arch in ARCHES.items()}
MATCHING = {arch.name: arch.matching for arch in ARCHES.values()}


def parse_args(argv=None):
    p = tool_parser(__doc__)
    p.add_argument('--vlms', nargs='+', default=['blip'],
                   choices=[v.lower() for v in VLMS],
                   help='the tiny VLMs to run, each on every --seeds; one '
                   'table per VLM (the tables in the README come from '
                   '--vlms blip albef llava)')
    p.add_argument('--seeds', type=int, nargs='*', default=[0, 1],
                   help='generator seeds of the world; the first is the '
                   'headline')
    p.add_argument('--albef-seeds', type=int, nargs='*', default=[],
                   help='seeds for the tiny ALBEF beside --vlms (an older '
                   'form of --vlms blip albef with other seeds)')
    p.add_argument('--num-train', type=int, default=500)
    p.add_argument('--num-val', type=int, default=200)
    p.add_argument('--data-root', default='data',
                   help='seed S lives in DATA_ROOT/shapes (S=0) or '
                   'DATA_ROOT/shapes_seedS')
    p.add_argument('--work-dir', default='work_dirs/quickstart')
    p.add_argument('--num-images', type=int, default=100,
                   help='unlabeled images for InfoScore')
    p.add_argument('--oneshot-draws', type=int, default=5,
                   help='support draws for one-shot fine-tuning on each seed '
                   '(0 skips it)')
    p.add_argument('--jobs', type=int, default=None,
                   help='one-shot draws trained at the same time, one torch '
                   'thread each, so the numbers do not depend on the core '
                   'count (default: the CPU cores this process may use)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value overrides for every run, e.g. '
                   'model.vlm.pretrained=DIR')
    return p.parse_args(argv)


def as_dict(options):
    return cfg_options_dict(options)


def ensure_data(root, seed, num_train, num_val):
    meta_file = os.path.join(root, 'meta.json')
    if os.path.isfile(meta_file):
        with open(meta_file) as f:
            meta = json.load(f)
        want = dict(seed=seed, num_train=num_train, num_val=num_val,
                    version=WORLD_VERSION)
        if any(meta.get(k) != v for k, v in want.items()):
            sys.exit(f'{root} holds another split or an older version of the '
                     f'world ({meta}, need {want}); remove it or pass another '
                     '--data-root.')
        return
    print(f'[quickstart] generating {root} (seed {seed})', flush=True)
    write_dataset(root, seed, num_train, num_val)


def test_tool(config, work_dir, options):
    """Run tools/test.py's command and return its metrics."""
    run_tool(['test', config, '--work-dir', work_dir, '--cfg-options']
             + options, '[quickstart] tools/test.py')
    return test_metrics(work_dir)


def background_baseline(root):
    """mIoU of predicting background everywhere."""
    import cv2
    labels = [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in
              sorted(glob.glob(os.path.join(root, 'ann_dir', 'val', '*.png')))]
    bg = float(np.mean([(l == 0).mean() for l in labels]))
    return 100 * bg / len(CLASSES)


def run_seed(seed, args, vlm='BLIP'):
    root = os.path.join(args.data_root, 'shapes' if seed == 0
                        else f'shapes_seed{seed}')
    ensure_data(root, seed, args.num_train, args.num_val)
    zeroshot, oneshot_config = VLMS[vlm]
    data_opt = {'test_dataloader.dataset.data_root': root,
                **as_dict(args.cfg_options)}
    work = os.path.join(args.work_dir, f'seed{seed}' if vlm == 'BLIP'
                        else f'{vlm.lower()}_seed{seed}')
    print(f'[quickstart] {vlm} seed {seed}: InfoScore ranking and per-layer '
          'mIoU', flush=True)
    r = analyse(zeroshot, args.num_images, None, True, data_opt,
                class_level=False)  # not in the table: keep it short
    opts = [f'test_dataloader.dataset.data_root={root}'] + args.cfg_options
    print(f'[quickstart] {vlm} seed {seed}: tools/test.py, training-free top-2',
          flush=True)
    on = test_tool(zeroshot, os.path.join(work, 'zeroshot'), opts)
    with open(os.path.join(work, 'zeroshot', 'infoscore.json')) as f:
        chosen = json.load(f)['selected']
    if chosen != r['selected']:
        sys.exit(f'[quickstart] tools/test.py chose layers {chosen}, the '
                 f'ranking chose {r["selected"]}: they must agree.')
    # the ablation keeps the same layers
    layers = '[' + ','.join(map(str, chosen)) + ']'
    off = test_tool(zeroshot, os.path.join(work, 'zeroshot_no_itm'),
                    opts + ['model.itm_reweight=False', f'model.layers={layers}'])
    oneshot = None
    if args.oneshot_draws > 0:
        oneshot = run_oneshot(oneshot_config, root,
                              os.path.join(work, 'oneshot'), args)
    _, model, loader = build_model_and_loader(zeroshot, data_opt)
    model.set_layers(r['selected'])
    scores, present = presence_scores(model, loader)
    names = model.class_names[1:]
    auroc = presence_auroc(scores[:, 1:], present[:, 1:], names)
    return dict(vlm=vlm, seed=seed, data_root=root, infoscore=r,
                zeroshot_miou=on['mIoU'], zeroshot_no_itm_miou=off['mIoU'],
                presence_auroc=auroc, background_miou=background_baseline(root),
                oneshot=oneshot)


def run_oneshot(config, root, work, args):
    """tools/oneshot_eval.py on this world; its JSON result."""
    print(f'[quickstart] one-shot fine-tuning, {args.oneshot_draws} support '
          'draws (tools/oneshot_eval.py)', flush=True)
    jobs = args.jobs or (len(os.sched_getaffinity(0))
                         if hasattr(os, 'sched_getaffinity') else os.cpu_count())
    run_tool(['oneshot_eval', config, '--draws', str(args.oneshot_draws),
              '--work-dir', work, '--jobs', str(max(1, jobs)), '--threads', '1',
              '--cfg-options',
              f'train_dataloader.dataset.dataset.data_root={root}',
              f'test_dataloader.dataset.data_root={root}'] + args.cfg_options,
             '[quickstart] tools/oneshot_eval.py', echo='[oneshot_eval]')
    with open(os.path.join(work, 'oneshot_eval.json')) as f:
        return json.load(f)


def table(results):
    """Markdown: a row per quantity, a column per (VLM, seed) run; the
    presence row names the first run's matching score."""
    header = [''] + [f'{r.get("vlm", "BLIP")} seed {r["seed"]}'
                     for r in results]
    rows = []

    def row(name, values):
        rows.append([name] + list(values))

    score = MATCHING[results[0].get('vlm', 'BLIP')]
    row(f'presence AUROC of {score}, mean over classes',
        [f'{r["presence_auroc"]["mean"]:.3f}' for r in results])
    layers = sorted({l for r in results for l in r['infoscore']['layers']})
    for l in layers:
        row(f'mIoU, attention layer {l} alone',
            [f'{r["infoscore"]["per_layer_miou"][l]:.1f}'
             if l in r['infoscore']['layers'] else '—' for r in results])
    row('InfoScore top-2 layers (no labels)',
        [str(r['infoscore']['selected']) for r in results])
    row('Spearman(InfoScore, per-layer mIoU)',
        [f'{r["infoscore"]["spearman"]:.2f}' for r in results])
    row('**training-free top-2 mIoU** (tools/test.py)',
        [f'**{r["zeroshot_miou"]:.1f}**' for r in results])
    row('training-free top-2 without ITM re-weighting' if 'ITM' in score
        else 'training-free top-2 without re-weighting by the matching score',
        [f'{r["zeroshot_no_itm_miou"]:.1f}' for r in results])

    def oneshot(r, fmt):
        return fmt(r['oneshot']) if r['oneshot'] else '—'

    draws = next((len(r['oneshot']['draws']) for r in results
                  if r['oneshot']), 0)
    if draws:
        row(f'**one-shot top-2 mIoU**, mean ± std over {draws} support draws '
            '(tools/oneshot_eval.py)',
            [oneshot(r, lambda o: f'**{o["summary"]["mIoU"]["mean"]:.1f} ± '
                     f'{o["summary"]["mIoU"]["std"]:.1f}**') for r in results])
        row('one-shot training time per draw, s (max)',
            [oneshot(r, lambda o: f'{max(d["train_seconds"] for d in o["draws"]):.0f}')
             for r in results])
    row('all-background baseline mIoU',
        [f'{r["background_miou"]:.1f}' for r in results])
    return markdown_table(header, rows)


def tables(results):
    """One table per VLM, each under its name when there are several."""
    vlms = list(dict.fromkeys(r['vlm'] for r in results))
    if len(vlms) == 1:
        return table(results)
    return '\n\n'.join(f'**Tiny {v}**\n\n' + table(
        [r for r in results if r['vlm'] == v]) for v in vlms)


def quickstart(argv=None):
    """``tools/quickstart.py``: parse ``argv``, run every seed, print and
    write the table; returns the per-run results."""
    args = parse_args(argv)
    runs = [(vlm, s) for vlm in VLMS if vlm.lower() in args.vlms
            for s in args.seeds]
    runs += [('ALBEF', s) for s in args.albef_seeds
             if ('ALBEF', s) not in runs]
    if not runs:
        sys.exit('[quickstart] nothing to run: give --seeds (and --vlms) '
                 'and/or --albef-seeds.')
    t0 = time.time()
    results = [run_seed(s, args, vlm) for vlm, s in runs]
    md = tables(results)
    print('\n' + md)
    print(f'\n[quickstart] {time.time() - t0:.0f} s; results in '
          f'{args.work_dir}/results.{{json,md}}')
    with atomic_write(os.path.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(results=results, seconds=time.time() - t0), f, indent=2)
    with atomic_write(os.path.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(md + '\n')
    return results
