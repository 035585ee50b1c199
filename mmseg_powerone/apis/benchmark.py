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
import contextlib
import ctypes
import gc
import json
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict

import torch

from ..class_names import read_class_file
from ..testing.reference import (counted_lengths, floor, naive_forward,
                                 required_flops)
from ..utils import atomic_write
from ..utils.cli import tool_parser
from ..utils.report import markdown_table
from ..utils.resources import class_names_path

# Sizes of Salesforce/blip-itm-{base,large}-coco (their config.json): the
# text side is BERT-base with cross-attention in every layer.
GEOMETRY = {
    'base': dict(vision=dict(hidden_size=768, num_hidden_layers=12,
                             num_attention_heads=12, intermediate_size=3072)),
    'large': dict(vision=dict(hidden_size=1024, num_hidden_layers=24,
                              num_attention_heads=16, intermediate_size=4096)),
    # a smoke-test size (the tests run the tool end to end with it)
    'tiny': dict(vision=dict(hidden_size=48, num_hidden_layers=2,
                             num_attention_heads=4, intermediate_size=192),
                 text=dict(hidden_size=32, num_hidden_layers=9,
                           num_attention_heads=4, intermediate_size=128)),
}
TEXT = dict(vocab_size=30524, hidden_size=768, num_hidden_layers=12,
            num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=512)
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


# ------------------------------------------------------------------ set-up
def read_names(name):
    return read_class_file(class_names_path(name + '.txt'))


def all_names():
    """Every class name (synonyms included) of the benchmark class files,
    each once, in file order."""
    names = {}
    for f in ('coco_stuff', 'ade20k', 'context60', 'voc21'):
        for c in read_names(f):
            names.update(dict.fromkeys(c))
    return list(names)


def prompt_setup(num_prompts):
    """Class names giving ``num_prompts`` prompts: VOC's 21 classes (P=21),
    VOC with its 29 background synonyms (P=49), otherwise COCO-Stuff and
    ADE20K names without a background class. P=1 is text-side only."""
    if num_prompts == 21:
        return [c[0] for c in read_names('voc21')], True
    if num_prompts == 49:
        return class_names_path('voc21.txt'), True
    pool = all_names()
    if num_prompts > len(pool):
        raise SystemExit(f'benchmark.py: at most {len(pool)} prompts.')
    return pool[:max(num_prompts, 2)], False


def save_model(vlm, size, out_dir):
    """A random BLIP ITM model of the given geometry, with a tokenizer that
    knows every class-name word (one token per word, as BERT mostly has)."""
    from transformers import BlipConfig, BlipForImageTextRetrieval
    from ..shapes.tiny_vlms import SPECIAL_TOKENS, save_tokenizer
    words = {w for n in all_names() for w in n.lower().replace('-', ' ').split()}
    save_tokenizer(out_dir, sorted(words))
    text = dict(TEXT, **GEOMETRY[vlm].get('text', {}))
    text.update(encoder_hidden_size=GEOMETRY[vlm]['vision']['hidden_size'],
                pad_token_id=0, bos_token_id=SPECIAL_TOKENS.index('[DEC]'),
                sep_token_id=SPECIAL_TOKENS.index('[SEP]'), is_decoder=True)
    vision = dict(GEOMETRY[vlm]['vision'], image_size=size, patch_size=16)
    torch.manual_seed(0)
    model = BlipForImageTextRetrieval(BlipConfig(text_config=text,
                                                 vision_config=vision))
    model.save_pretrained(out_dir)
    del model
    return out_dir


def build(model_dir, num_prompts, mode, chunk, crf, device,
          itm_reduce='max', compile_mode=None):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    names, has_bg = prompt_setup(num_prompts)
    seg = MODELS.build(dict(
        type='VLMAttentionSegmentor',
        vlm=dict(type='BLIPAdapter', pretrained=model_dir, prompt_chunk=chunk),
        class_names=names, has_background=has_bg, layers=[6, 8],
        map_mode=mode, itm_reduce=itm_reduce,
        compile=dict(mode=compile_mode) if compile_mode else None,
        crf=dict(type='ConvCRF') if crf else None))
    return seg.to(device).eval()


# ------------------------------------------------------------- measurement
class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled
    every 2 ms), and CUDA's peak allocation on a GPU.

    Freed heap pages are handed back to the OS first (glibc keeps them, so
    without this a setting measured after a larger one reported the larger
    one's peak: 3.9 instead of 1.7 GiB at BLIP-base P=200)."""

    def __init__(self, device):
        self.cuda = str(device).startswith('cuda')
        self.peak = 0

    @staticmethod
    def release_free_memory():
        gc.collect()
        try:
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: nothing to hand back
            pass

    @staticmethod
    def rss():
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.002)

    def __enter__(self):
        self.release_free_memory()
        self.peak = self.rss()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
        if self.cuda:
            self.peak = torch.cuda.max_memory_allocated()


class StageTimer:
    """Wall time spent in the adapter's vision and text calls and in the CRF
    during our path; the rest of ``encode_decode`` is map building."""

    def __init__(self, seg, device):
        self.cuda = str(device).startswith('cuda')
        self.times = defaultdict(float)
        self.wrapped = [(seg.adapter, attr, stage) for attr, stage in (
            ('encode_image', 'vision'), ('cross_kv', 'text'),
            ('text_forward', 'text'))]
        if seg.crf is not None:
            self.wrapped.append((seg.crf, 'forward', 'crf'))

    def __enter__(self):
        for obj, attr, stage in self.wrapped:  # instance attributes shadow
            setattr(obj, attr, self._wrap(getattr(obj, attr), stage))
        return self

    def __exit__(self, *exc):
        for obj, attr, _ in self.wrapped:
            del obj.__dict__[attr]

    def _sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def _wrap(self, fn, stage):
        def timed(*args, **kwargs):
            self._sync()
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            self._sync()
            self.times[stage] += time.perf_counter() - start
            return out
        return timed


def timed(fn, repeat, device, amp, timer=None):
    """Mean wall time of ``fn()`` over ``repeat`` runs after a warm-up, and
    the peak memory of those runs; ``timer`` (a :class:`StageTimer`) splits
    the same runs into stages."""
    ctx = (torch.autocast(torch.device(device).type, dtype=dict(
        bf16=torch.bfloat16, fp16=torch.float16)[amp]) if amp
        else torch.autocast(torch.device(device).type, enabled=False))
    cuda = str(device).startswith('cuda')
    total, peak = 0.0, 0
    with torch.no_grad(), ctx, (timer or contextlib.nullcontext()):
        fn()
        if timer is not None:
            timer.times.clear()
        for _ in range(repeat):
            with PeakMemory(device) as mem:
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn()
                if cuda:
                    torch.cuda.synchronize()
                total += time.perf_counter() - start
            peak = max(peak, mem.peak)
    return total / repeat, peak


def matmul_rate(m: int, k: int, n: int, device, amp=None,
                repeat: int = 9) -> float:
    """FLOP/s of a dense [m, k] x [k, n] matmul on this device, with this
    process's threads and the run's dtype: the median of ``repeat`` timed
    runs after two warm-ups (the rate the device sustains for the shapes
    that dominate a forward: on a shared machine the best run is a lucky
    one, 3-18% above the mean on our 2-core CPU)."""
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16).get(amp,
                                                              torch.float32)
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    cuda = str(device).startswith('cuda')
    times = []
    for i in range(repeat + 2):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if cuda:
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 2.0 * m * k * n / statistics.median(times)


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
                        adapter, tokens, x, layers, map_mode=mode), args.repeat,
                        args.device, args.amp)
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


ONESHOT_CONFIG = 'mmseg_powerone::powerone/powerone_blip-tiny_oneshot_shapes.py'
SHAPES = ['circle', 'square', 'triangle', 'star', 'cross', 'ring']


def adapt_benchmark(args, device_name):
    """Seconds of ``adapt()`` (inferencer built, examples read, tuned, the
    tuned inferencer built) on the embedded world's one-shot draw 0, beside
    the config route's training of the same draw, in one process; and
    whether their weights are equal."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from ..shapes.world import write_dataset
    from .inferencer import PowerOneInferencer
    from .train_test import train
    if not os.path.isdir(os.path.join(args.data_root, 'img_dir', 'train')):
        write_dataset(args.data_root, 0, 500, 200)
    init_default_scope('mmseg')
    supports = DATASETS.build(dict(
        type='OneShotDataset', shots=1, seed=0, dataset=dict(
            type='SyntheticShapesDataset', data_root=args.data_root,
            data_prefix=dict(img_path='img_dir/train',
                             seg_map_path='ann_dir/train'), pipeline=[])))
    examples = [(supports.get_data_info(i)['img_path'],
                 supports.get_data_info(i)['seg_map_path'])
                for i in range(len(supports))]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        tuned = PowerOneInferencer(layers=[0, 2], device=args.device).adapt(
            examples, classes=SHAPES)
        adapt_s = time.perf_counter() - start
        start = time.perf_counter()
        train([ONESHOT_CONFIG, '--work-dir', tmp, '--cfg-options',
               f'train_dataloader.dataset.dataset.data_root={args.data_root}',
               'model.layers=[0,2]', 'custom_hooks=[]'])
        route_s = time.perf_counter() - start
        route = torch.load(os.path.join(tmp, 'epoch_5.pth'),
                           map_location='cpu', weights_only=True)
    ours = tuned._adaptation[0]['state_dict']
    same = all(torch.equal(v, ours[k])
               for k, v in route['state_dict'].items()
               if k != '_extra_state')
    table = markdown_table(
        ['', 'seconds'],
        [['adapt(): inferencer, 6 examples, 5 passes, tuned inferencer',
          f'{adapt_s:.1f}'],
         ['config route: tools/train.py on the same draw', f'{route_s:.1f}'],
         ['ratio adapt / config route', f'{adapt_s / route_s:.2f}']])
    text = (f'Device: {device_name}; torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads. Embedded world (seed 0), '
            'one-shot draw 0, the tiny BLIP, layers [0, 2].\n\n' + table +
            f'\n\nsame tuned weights: {"yes" if same else "NO"}\n')
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, 'adapt.json'), 'w') as f:
        json.dump(dict(device=device_name, adapt_seconds=adapt_s,
                       config_route_seconds=route_s, same_weights=same), f,
                  indent=2)
    with atomic_write(os.path.join(args.out, 'adapt.md'), 'w') as f:
        f.write(text)
    print()
    print(text, end='')
    return dict(adapt_seconds=adapt_s, config_route_seconds=route_s,
                same_weights=same)


VOC_CONFIG = 'mmseg_powerone::powerone/powerone_blip-large_zeroshot_voc21.py'


def write_voc_folder(root: str, num_images: int, size, seed: int = 0) -> str:
    """A VOC2012-layout folder of ``num_images`` JPEGs (``size`` = W, H) with
    random label maps over the 21 classes: what the whole-dataset run
    reads. Returns the VOC2012 folder."""
    import cv2
    import numpy as np
    voc = os.path.join(root, 'VOC2012')
    for sub_dir in ('JPEGImages', 'SegmentationClass',
                    os.path.join('ImageSets', 'Segmentation')):
        os.makedirs(os.path.join(voc, sub_dir), exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    names = []
    for i in range(num_images):
        name = f'{i:06d}'
        coarse = rng.integers(0, 255, (h // 25 + 1, w // 25 + 1, 3),
                              dtype=np.uint8)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        label = np.zeros((h, w), np.uint8)
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        label[y:y + h // 3, x:x + w // 3] = rng.integers(1, 21)
        cv2.imwrite(os.path.join(voc, 'JPEGImages', name + '.jpg'), img)
        cv2.imwrite(os.path.join(voc, 'SegmentationClass', name + '.png'),
                    label)
        names.append(name)
    with open(os.path.join(voc, 'ImageSets', 'Segmentation', 'val.txt'),
              'w') as f:
        f.write('\n'.join(names) + '\n')
    return voc


def dataset_benchmark(args, device_name):
    """Images/s of ``tools/test.py``'s path over a generated VOC-sized
    folder (the VOC21 paper config: reference geometry, CRF, IoU), beside
    the model alone (``encode_decode`` at the same batch size), in one
    run."""
    from ..engine.runner import build_runner
    from ..utils.resources import load_config
    vlm, batch = args.vlm[0], max(args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        print(f'== {args.num_images} JPEGs of {args.image_size[0]} x '
              f'{args.image_size[1]}; BLIP-{vlm} geometry (random weights)',
              flush=True)
        voc = write_voc_folder(tmp, args.num_images, args.image_size)
        model_dir = save_model(vlm, 512, os.path.join(tmp, 'model'))
        cfg = load_config(VOC_CONFIG)
        cfg.model.vlm.pretrained = model_dir
        if args.compile:
            cfg.model.compile = dict(mode=args.compile)
        cfg.work_dir = os.path.join(tmp, 'work')
        loader = cfg.test_dataloader
        loader.dataset.data_root = voc
        loader.batch_size = batch
        loader.num_workers = args.workers
        loader.persistent_workers = args.workers > 0
        if args.amp:
            cfg.test_cfg = dict(type='TestLoop', fp16=True)
        cfg.default_hooks.logger.interval = 50
        runner = build_runner(cfg)
        start = time.perf_counter()
        metrics = runner.test()
        dataset_s = time.perf_counter() - start
        seg = runner.model
        x = torch.randn(batch, 3, 512, 512, device=next(seg.parameters()).device)
        model_s, _ = timed(lambda: seg.encode_decode(x), args.repeat,
                           x.device, args.amp)
    dataset_ips = args.num_images / dataset_s
    model_ips = batch / model_s
    table = markdown_table(
        ['', 'images/s'],
        [[f'tools/test.py path, {args.num_images} images, batch {batch}, '
          f'{args.workers} workers (load, resize, model, CRF, IoU)',
          f'{dataset_ips:.2f}'],
         [f'model alone (encode_decode with CRF), batch {batch}',
          f'{model_ips:.2f}'],
         ['ratio whole dataset / model alone',
          f'{dataset_ips / model_ips:.2f}']])
    text = (f'Device: {device_name}; torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads; amp: {args.amp or "off"}; '
            f'compile: {args.compile or "off"}. VOC21 paper config, '
            f'BLIP-{vlm} geometry.\n\n' + table + '\n')
    result = dict(device=device_name, images=args.num_images, batch=batch,
                  workers=args.workers, dataset_images_per_s=dataset_ips,
                  model_images_per_s=model_ips, mIoU=float(metrics['mIoU']))
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, 'dataset.json'), 'w') as f:
        json.dump(result, f, indent=2)
    with atomic_write(os.path.join(args.out, 'dataset.md'), 'w') as f:
        f.write(text)
    print()
    print(text, end='')
    return result
