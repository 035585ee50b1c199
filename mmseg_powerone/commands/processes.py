"""Running a command in a process of its own: a fork of this one, already
warm with torch, mmengine and mmseg imported, or a fresh interpreter
(``python -m mmseg_powerone.commands NAME ...``). The one-shot draws, the
quickstart and the distillation chain run tools/train.py and tools/test.py
this way, so each run starts from a clean Runner and registry state."""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

from . import COMMANDS_MODULE, command


def fork_problem():
    """Why tool runs may not be forks of this process, or None. Forks need
    Linux and a CPU-only torch: once anything in a process has asked CUDA
    for its devices (``torch.cuda.is_available()`` does; some imports do),
    a forked child cannot initialise CUDA, so with a CUDA or ROCm build the
    runs start fresh interpreters instead."""
    if not (sys.platform.startswith('linux') and hasattr(os, 'fork')):
        return 'forking needs Linux'
    import torch
    gpu = torch.version.cuda or getattr(torch.version, 'hip', None)
    if gpu:
        return (f'this torch is built for GPUs ({gpu}), which a forked '
                'process cannot use')
    if torch.cuda.is_initialized():
        return 'this process has initialised CUDA'
    return None


def can_fork():
    return fork_problem() is None


def preload():
    """Import what every run imports, so forked runs start warm."""
    import mmengine.runner  # noqa: F401  (imported for its side effect)

    from . import train_test  # noqa: F401  (imported for its side effect)


def fork_call(fn):
    """Run ``fn()`` in a fork of this process; returns the child's pid. The
    child exits with 0, ``sys.exit``'s status, or 1 after printing the
    error; it never returns here."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fn()
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_forked(name, argv, threads=None):
    """Run command ``name`` (see :data:`COMMANDS`) in a fork of this process;
    returns its exit status and output. The caller must not have run torch
    computations yet: a fork inherits a started OpenMP thread pool it cannot
    use."""
    with tempfile.TemporaryFile() as out:
        def child():
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            if threads:
                import torch
                torch.set_num_threads(threads)
            sys.argv = [name] + argv
            command(name)(argv)

        _, status = os.waitpid(fork_call(child), 0)
        out.seek(0)
        return (os.waitstatus_to_exitcode(status),
                out.read().decode(errors='replace'))


def run_tool(args, what, fork=False, threads=None, echo=None):
    """Run command ``args[0]`` (``'train'``, ``'test'``, ``'oneshot_eval'``:
    what the tools of those names run) with arguments ``args[1:]`` in a
    process of its own (a fork of this one with ``fork``, see
    ``run_forked``; else a fresh interpreter) with ``threads`` torch
    threads; exit with its output's tail, prefixed by ``what``, if it
    fails. In a fresh interpreter, its output lines that start with
    ``echo`` are printed as they come (progress). Returns seconds."""
    start = time.perf_counter()
    if fork and can_fork():
        code, out = run_forked(args[0], args[1:], threads)
    else:
        env = dict(os.environ)
        if threads:
            env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
        proc = subprocess.Popen([sys.executable, '-m', COMMANDS_MODULE]
                                + list(args),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if echo and line.startswith(echo):
                print(line, end='', flush=True)
        code, out = proc.wait(), ''.join(lines)
    if code != 0:
        sys.exit(f'{what} failed (tools/{args[0]}.py {" ".join(args[1:])}):\n'
                 f'{out[-3000:]}')
    return time.perf_counter() - start


def test_metrics(work_dir):
    """The metrics JSON of the newest tools/test.py run in ``work_dir``."""
    files = sorted(glob.glob(os.path.join(work_dir, '*', '*.json')),
                   key=os.path.getmtime)
    if not files:
        sys.exit(f'tools/test.py wrote no metrics in {work_dir}.')
    with open(files[-1]) as f:
        return json.load(f)
