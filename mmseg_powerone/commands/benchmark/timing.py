"""Clocks for the benchmarks: peak memory, per-stage time, a timed
repeat, and the matmul rate that prices the arithmetic floor."""
import contextlib
import ctypes
import gc
import os
import statistics
import threading
import time
from collections import defaultdict

import torch


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
