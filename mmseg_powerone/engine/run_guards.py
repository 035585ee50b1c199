"""Guards around a run that any entry point (a command, a library call that
runs a Runner) puts in place: one run per work dir, a CPU process group for
torchrun, and the group closed at the end."""
import contextlib
import os
import os.path as osp
import sys
import time


@contextlib.contextmanager
def work_dir_lock(work_dir: str):
    """Hold ``work_dir`` for this run: a second run started on the same
    work dir while this one lives stops at once, naming this one. (mmengine
    names a run's record after the second it started in, so two runs on one
    work dir started in the same second wrote one interleaved log, and both
    write ``infoscore.json`` and ``last_checkpoint`` there.) Only the main
    process of a distributed run takes it; a crashed run leaves no stale
    lock (the operating system drops it with the process)."""
    main = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) == '0'
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None
    if not main or fcntl is None:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, '.run.lock')
    with open(path, 'a+') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or 'another process'
            raise SystemExit(
                f'work_dir {work_dir} is in use by another run ({holder}). '
                'Give this run its own --work-dir, or wait for that one to '
                'finish.') from None
        f.seek(0)
        f.truncate()
        started = time.strftime('%Y-%m-%d %H:%M:%S')
        f.write(f'pid {os.getpid()}, started {started}: ' + ' '.join(sys.argv))
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            f.flush()


@contextlib.contextmanager
def process_group_closed():
    """End the block with the distributed process group destroyed, when one
    was started. Left to interpreter shutdown, gloo's threads were once
    torn down while still running ("terminate called without an active
    exception", SIGABRT in one rank after its results were written)."""
    try:
        yield
    finally:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def init_cpu_process_group(cfg):
    """Start a gloo process group on machines without CUDA.

    mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device``
    unconditionally, so torchrun on CPU fails inside the Runner; the Runner
    skips its own initialisation when a process group already exists.
    """
    import torch
    import torch.distributed as dist
    if torch.cuda.is_available() or dist.is_initialized():
        return
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
    from datetime import timedelta
    dist.init_process_group(backend='gloo',
                            timeout=timedelta(seconds=timeout))
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    # The Runner gives DDP device_ids=[LOCAL_RANK], which DDP refuses for a
    # CPU module; CPU DDP needs device_ids=None.
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg.setdefault('device_ids', None)
