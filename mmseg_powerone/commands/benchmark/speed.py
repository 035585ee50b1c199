"""Speed and memory of the segmentor's map path, measured side by side with
a naive per-prompt loop and the floor, on randomly initialised BLIP models
of the real checkpoints' sizes (no downloads).

    python tools/benchmark.py [--vlm large] [--size 512] [--prompts 1 21 49 200]
        [--batch 1 4] [--modes attention gradcam] [--repeat 2] [--crf]
        [--device cpu] [--amp bf16] [--compile MODE] [--out work_dirs/benchmark]

For each setting it times (a) our path, ``VLMAttentionSegmentor.encode_decode``
with its breakdown (vision, text, map building, CRF), (b) a naive loop that
runs the text encoder once per prompt and recomputes the image keys/values
each time, and (c) the floor: the vision forward plus one text pass for one
prompt with the image keys/values computed once. Beside them, the
arithmetic floor: the FLOPs the method cannot skip (every image's vision
forward and cross-attention keys/values, every prompt's text pass over its
real tokens with the ITM head, GradCAM's backward), counted by torch's
FlopCounterMode on the real modules (with the default ITM rule 'max', every
prompt's padding positions, which that score reads), divided by the matmul
rate this device reaches for the shapes that dominate, measured just before
and just after our path's timed runs (median of 9 products each, mean of
the two: a shared machine's speed drifts); ``ours / arith.`` is how far our
path is from it. It prints per-image latency, peak memory and
the ratios the performance targets are stated in, and writes
``benchmark.json`` and ``benchmark.md`` to ``--out``. Ratios come from one
run on one machine; absolute times depend on it.

``--adapt`` times ``PowerOneInferencer.adapt`` instead (see its help).
"""
import json
import os
import tempfile
from collections import defaultdict

import torch

from ...utils import atomic_write
from ...utils.report import markdown_table
from ..cli import tool_parser
from .adapt import adapt_benchmark
from .baselines import counted_lengths, floor, naive_forward, required_flops
from .dataset import dataset_benchmark
from .models import GEOMETRY, build, save_model
from .timing import StageTimer, matmul_rate, timed

TARGETS = dict(attention_vs_floor=1.3, text_p49_vs_p1=1.5,
               gradcam_vs_floor=2.5, p200_peak_gib=4.0,
               batch4_vs_batch1_throughput=1.0,
               attention_vs_arith_floor_max=1.3,
               gradcam_vs_arith_floor_max=2.0)


def parse_args(argv=None):
    p = tool_parser(__doc__)
    p.add_argument('--vlm', nargs='+', default=['large'],
                   choices=sorted(GEOMETRY))
    p.add_argument('--size', nargs='+', type=int, default=[512])
    p.add_argument('--prompts', nargs='+', type=int, default=[1, 21, 49, 200])
    p.add_argument('--batch', nargs='+', type=int, default=[1, 4])
    p.add_argument('--modes', nargs='+', default=['attention', 'gradcam'],
                   choices=['attention', 'gradcam'])
    p.add_argument('--repeat', type=int, default=2,
                   help='timed runs per setting after one warm-up (mean)')
    p.add_argument('--prompt-chunk', type=int, default=64)
    p.add_argument('--itm-reduce', default='max',
                   choices=['max', 'max_real', 'first'],
                   help="the segmentor's ITM rule; 'max' (the reference "
                   "code's, default) reads every prompt's padding positions, "
                   'so the arithmetic floor counts them')
    p.add_argument('--crf', action='store_true',
                   help='include the ConvCRF (20 iterations) in our path')
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', choices=['bf16', 'fp16'], default=None,
                   help='autocast dtype (GPU inference)')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--compile', default=None, metavar='MODE',
                   choices=['default', 'reduce-overhead', 'max-autotune'],
                   help="build the segmentor with compile=dict(mode=MODE) "
                   "(torch.compile of the adapter's fixed-shape modules; "
                   "'reduce-overhead' replays CUDA graphs); each setting's "
                   'warm-up run compiles')
    p.add_argument('--adapt', action='store_true',
                   help='instead: time PowerOneInferencer.adapt on the '
                   "embedded world's one-shot draw 0 (the tiny BLIP) beside "
                   'the config route (tools/train.py) on the same supports, '
                   'and check that both end with the same weights')
    p.add_argument('--dataset', action='store_true',
                   help='instead: whole-dataset throughput of the tools/test.py '
                   'path (mmengine Runner, dataloader workers, CRF, IoUMetric) '
                   'on a generated VOC-sized folder of JPEGs with the VOC21 '
                   'paper config and a random BLIP of --vlm geometry, beside '
                   'the model alone at the same batch size')
    p.add_argument('--num-images', type=int, default=1449,
                   help='--dataset: images (VOC12 val has 1449)')
    p.add_argument('--image-size', type=int, nargs=2, default=[500, 375],
                   metavar=('W', 'H'), help='--dataset: JPEG size')
    p.add_argument('--workers', type=int, default=4,
                   help='--dataset: dataloader workers')
    p.add_argument('--data-root', default='data/shapes',
                   help='--adapt: the embedded world (seed 0; generated '
                   'there if missing)')
    p.add_argument('--out', default='work_dirs/benchmark')
    args = p.parse_args(argv)
    for name in ('size', 'prompts', 'batch'):
        if any(v < 1 for v in getattr(args, name)):
            p.error(f'--{name} values must be positive')
    if args.repeat < 1:
        p.error('--repeat must be at least 1')
    return args


def floor_shapes(adapter, tokens, x, itm_reduce):
    """The matmul shapes whose rate prices the arithmetic floor: the vision
    MLP's (patch tokens x width x 4 width) and the text MLP's (all images'
    counted prompt tokens x width x 4 width)."""
    vision_cfg = adapter.model.config.vision_config
    text_cfg = adapter.model.config.text_config
    patches = (x.shape[2] // adapter.patch_size) * \
        (x.shape[3] // adapter.patch_size) + 1
    counted = sum(counted_lengths(tokens['attention_mask'], itm_reduce))
    return dict(vision=(patches, vision_cfg.hidden_size,
                        vision_cfg.intermediate_size),
                text=(max(counted * x.shape[0], 1), text_cfg.hidden_size,
                      text_cfg.intermediate_size))


def rates_around(fn, shapes, device, amp):
    """Run ``fn()`` between two measurements of the matmul rate of each of
    ``shapes``; the rates are the mean of the two, so that the floor is
    priced at the speed this (shared) machine had while ``fn`` ran.
    Returns ``fn()``'s result and the rates."""
    before = {k: matmul_rate(*s, device, amp) for k, s in shapes.items()}
    out = fn()
    after = {k: matmul_rate(*s, device, amp) for k, s in shapes.items()}
    return out, {k: (before[k] + after[k]) / 2 for k in shapes}


def arithmetic_floor(adapter, tokens, x, layers, mode, itm_reduce, rates):
    """Seconds per image that the required FLOPs (``required_flops``) take
    at the matmul ``rates`` (FLOP/s) of :func:`floor_shapes`. Returns the
    row's fields."""
    flops = required_flops(adapter, tokens, x, layers, mode, itm_reduce)
    B = x.shape[0]
    seconds = flops['vision'] / rates['vision'] + flops['text'] / rates['text']
    return dict(gflop=(flops['vision'] + flops['text']) / B / 1e9,
                vision_gflops_rate=rates['vision'] / 1e9,
                text_gflops_rate=rates['text'] / 1e9,
                arith_floor_s=seconds / B)


def measure(args, vlm, size, model_dir):
    rows = []
    g = torch.Generator().manual_seed(0)
    for mode in args.modes:
        for P in args.prompts:
            seg = build(model_dir, P, mode, args.prompt_chunk, args.crf,
                        args.device, args.itm_reduce, args.compile)
            layers = seg.layers
            tokens = seg.prompt_tokens()
            adapter = seg.adapter
            for B in args.batch:
                x = torch.randn(B, 3, size, size, generator=g).to(args.device)
                row = dict(vlm=vlm, size=size, mode=mode, prompts=P, batch=B)
                t, _ = timed(lambda: floor(adapter, tokens, x, layers),
                             args.repeat, args.device, args.amp)
                row['floor_s'] = t / B
                if P == 1:  # text side only: the floor's own text pass
                    timer = StageTimer(seg, args.device)
                    timed(lambda: floor(adapter, tokens, x, layers),
                          args.repeat, args.device, args.amp, timer)
                    row['text_s'] = timer.times['text'] / args.repeat / B
                    rows.append(row)
                    print_row(row)
                    continue
                timer = StageTimer(seg, args.device)
                (t, peak), rates = rates_around(
                    lambda: timed(lambda: seg.encode_decode(x), args.repeat,
                                  args.device, args.amp, timer),
                    floor_shapes(adapter, tokens, x, seg.itm_reduce),
                    args.device, args.amp)
                row.update(ours_s=t / B, images_per_s=B / t,
                           peak_gib=peak / 2**30)
                row.update(arithmetic_floor(adapter, tokens, x, layers, mode,
                                            seg.itm_reduce, rates))
                row['ours_vs_arith_floor'] = row['ours_s'] / \
                    row['arith_floor_s']
                for stage in ('vision', 'text', 'crf'):
                    row[f'{stage}_s'] = timer.times[stage] / args.repeat / B
                row['maps_s'] = max(0.0, row['ours_s'] - row['vision_s']
                                    - row['text_s'] - row['crf_s'])
                if B == 1 and P <= 49:
                    t, _ = timed(lambda: naive_forward(
                        adapter, tokens, x, layers), args.repeat,
                        args.device, args.amp)  # the adapter's settings
                    row['naive_s'] = t
                if P == max(args.prompts) and B == 1:
                    row['max_abs_diff_unchunked'] = chunking_difference(
                        seg, x, args)
                rows.append(row)
                print_row(row)
    return rows


def chunking_difference(seg, x, args):
    """Largest difference between the maps with prompts chunked and with
    all prompts in one pass."""
    with torch.no_grad():
        chunked = seg.encode_decode(x)
        seg.adapter.prompt_chunk = 10 ** 6
        whole = seg.encode_decode(x)
        seg.adapter.prompt_chunk = args.prompt_chunk
    return float((chunked - whole).abs().max())


def print_row(r):
    parts = [f"{r['vlm']}@{r['size']} {r['mode']:9s} P={r['prompts']:<3d} "
             f"B={r['batch']}", f"floor {r['floor_s']:.3f}s"]
    for k in ('ours_s', 'vision_s', 'text_s', 'maps_s', 'crf_s', 'naive_s'):
        if k in r:
            parts.append(f"{k[:-2]} {r[k]:.3f}s")
    if 'peak_gib' in r:
        parts.append(f"peak {r['peak_gib']:.2f} GiB")
    print(' | '.join(parts), flush=True)


# ------------------------------------------------------------------ report
def ratios(rows):
    """The ratios the performance targets are stated in, per geometry."""
    out = []
    by = defaultdict(dict)
    for r in rows:
        by[(r['vlm'], r['size'])][(r['mode'], r['prompts'], r['batch'])] = r
    for (vlm, size), d in by.items():
        res = dict(vlm=vlm, size=size)
        a49 = d.get(('attention', 49, 1))
        if a49:
            res['attention_vs_floor'] = a49['ours_s'] / a49['floor_s']
            if 'naive_s' in a49:
                res['naive_vs_ours'] = a49['naive_s'] / a49['ours_s']
            p1 = d.get(('attention', 1, 1))
            if p1:
                res['text_p49_vs_p1'] = a49['text_s'] / p1['text_s']
        g49 = d.get(('gradcam', 49, 1))
        if g49:
            res['gradcam_vs_floor'] = g49['ours_s'] / g49['floor_s']
        for mode in ('attention', 'gradcam'):
            worst = max((r['ours_vs_arith_floor'] for (m, _, _), r in d.items()
                         if m == mode and 'ours_vs_arith_floor' in r),
                        default=None)
            if worst is not None:
                res[f'{mode}_vs_arith_floor_max'] = worst
        p200 = d.get(('attention', 200, 1))
        if p200:
            res['p200_peak_gib'] = p200['peak_gib']
            res['p200_chunked_vs_whole_max_diff'] = p200.get(
                'max_abs_diff_unchunked')
        b1, b4 = d.get(('attention', 49, 1)), d.get(('attention', 49, 4))
        if b1 and b4:
            res['batch4_vs_batch1_throughput'] = b1['ours_s'] / b4['ours_s']
        out.append(res)
    return out


def verdict(name, value):
    target = TARGETS[name]
    ok = value >= target if name.startswith('batch4') else value <= target
    sign = '>=' if name.startswith('batch4') else '<='
    return f'{value:.2f} (target {sign} {target}: {"met" if ok else "MISSED"})'


def markdown(rows, summary, args, device_name):
    lines = [f'Device: {device_name}; torch {torch.__version__}, '
             f'{torch.get_num_threads()} threads; amp: {args.amp or "off"}; '
             f'compile: {args.compile or "off"}; ITM rule: {args.itm_reduce}. '
             f'Seconds per image (mean of {args.repeat}), peak resident '
             'memory; arith. floor: required FLOPs / matmul rate measured '
             'around our timed runs.', '']

    def f(r, k, fmt='.3f'):
        return format(r[k], fmt) if k in r else ''
    lines.append(markdown_table(
        ['VLM', 'px', 'mode', 'P', 'batch', 'floor', 'ours', 'images/s',
         'vision', 'text', 'maps', 'CRF', 'naive', 'peak GiB', 'GFLOP',
         'arith. floor', 'ours / arith.'],
        [[r['vlm'], r['size'], r['mode'], r['prompts'], r['batch'],
          f(r, 'floor_s'), f(r, 'ours_s'), f(r, 'images_per_s', '.1f'),
          f(r, 'vision_s'), f(r, 'text_s'), f(r, 'maps_s'), f(r, 'crf_s'),
          f(r, 'naive_s'), f(r, 'peak_gib', '.2f'), f(r, 'gflop', '.1f'),
          f(r, 'arith_floor_s'), f(r, 'ours_vs_arith_floor', '.2f')]
         for r in rows]))
    ratio_rows = [[s['vlm'], s['size'], k,
                   verdict(k, v) if k in TARGETS else f'{v:.3g}']
                  for s in summary for k, v in s.items()
                  if k not in ('vlm', 'size') and v is not None]
    lines += ['', markdown_table(['VLM', 'px', 'ratio', 'value'], ratio_rows)]
    return '\n'.join(lines) + '\n'


def benchmark(argv=None):
    """``tools/benchmark.py``: parse ``argv``, measure every setting,
    write and print the table."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('benchmark.py: --device cuda but no GPU is visible.')
    device_name = (torch.cuda.get_device_name(0)
                   if args.device.startswith('cuda')
                   else f'CPU ({os.cpu_count()} cores)')
    if args.adapt:
        return adapt_benchmark(args, device_name)
    if args.dataset:
        return dataset_benchmark(args, device_name)
    rows = []
    for vlm in args.vlm:
        for size in args.size:
            with tempfile.TemporaryDirectory() as tmp:
                print(f'== BLIP-{vlm} geometry at {size} px (random weights)',
                      flush=True)
                model_dir = save_model(vlm, size, tmp)
                rows += measure(args, vlm, size, model_dir)
    summary = ratios(rows)
    table = markdown(rows, summary, args, device_name)
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, 'benchmark.json'), 'w') as f:
        json.dump(dict(device=device_name, args=vars(args), rows=rows,
                       ratios=summary, targets=TARGETS), f, indent=2)
    with atomic_write(os.path.join(args.out, 'benchmark.md'), 'w') as f:
        f.write(table)
    print()
    print(table, end='')
