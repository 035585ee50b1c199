"""Collect the results of tools/reproduce.sh into one table.

    python tools/reproduce_table.py WORK DATASET [DATASET ...]

Reads WORK/DATASET/rank/infoscore.json (tools/rank_layers.py),
WORK/DATASET/zeroshot*/ (tools/test.py metrics) and
WORK/DATASET/oneshot/oneshot_eval.json; writes WORK/results.md and
WORK/results.json.
"""
import json
import os
import sys

from ..utils import atomic_write
from .cli import tool_parser
from ..utils.report import markdown_table
from .processes import test_metrics

NAMES = {'voc21': 'PASCAL VOC (21)', 'coco-object': 'COCO-Object (81)'}


def collect(work, datasets):
    rows = []
    for ds in datasets:
        d = os.path.join(work, ds)
        with open(os.path.join(d, 'rank', 'infoscore.json')) as f:
            rank = json.load(f)
        with open(os.path.join(d, 'oneshot', 'oneshot_eval.json')) as f:
            oneshot = json.load(f)['summary']['mIoU']
        rows.append(dict(
            dataset=ds, layers=rank['selected'],
            spearman=rank.get('spearman'),
            zeroshot=test_metrics(os.path.join(d, 'zeroshot'))['mIoU'],
            zeroshot_multiprompt=test_metrics(
                os.path.join(d, 'zeroshot-multiprompt'))['mIoU'],
            oneshot_mean=oneshot['mean'], oneshot_std=oneshot['std']))
    return rows


def markdown(rows, draws):
    cells = [[NAMES.get(r['dataset'], r['dataset']), r['layers'],
              '' if r['spearman'] is None else f'{r["spearman"]:.2f}',
              f'{r["zeroshot"]:.1f}', f'{r["zeroshot_multiprompt"]:.1f}',
              f'{r["oneshot_mean"]:.1f} ± {r["oneshot_std"]:.1f}']
             for r in rows]
    table = markdown_table(
        ['dataset', 'InfoScore top-2', 'Spearman', 'training-free',
         'training-free, multi-prompt', 'one-shot (mean ± std)'], cells)
    return ('mIoU (%), BLIP-large ITM; one-shot over '
            f'{draws} support draws (tools/reproduce.sh)\n\n' + table + '\n')


def reproduce_table(argv=None):
    """``tools/reproduce_table.py``: parse ``argv``, collect, write and
    print the table."""
    p = tool_parser(__doc__)
    p.add_argument('work', help='the work dir tools/reproduce.sh wrote')
    p.add_argument('datasets', nargs='+', help='e.g. voc21 coco-object')
    args = p.parse_args(argv)
    work, datasets = args.work, args.datasets
    try:
        rows = collect(work, datasets)
    except FileNotFoundError as e:
        sys.exit(f'reproduce_table.py: {e.filename} is missing: run '
                 'tools/reproduce.sh to the end first.')
    with open(os.path.join(work, datasets[0], 'oneshot',
                           'oneshot_eval.json')) as f:
        draws = len(json.load(f)['draws'])
    table = markdown(rows, draws)
    with atomic_write(os.path.join(work, 'results.md'), 'w') as f:
        f.write(table)
    with atomic_write(os.path.join(work, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print(table, end='')
