"""Helpers for tests that run the command-line tools."""
import glob
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, cwd=REPO, env=None):
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def metrics_of(work_dir):
    files = glob.glob(os.path.join(work_dir, '*', '*.json'))
    assert files, f'no metrics json under {work_dir}'
    with open(sorted(files)[-1]) as f:
        return json.load(f)


def dist_env():
    """Environment for tools/dist_*.sh: a free local port and this Python
    (PYTHON; no torchrun on PATH and no activated venv needed: PATH keeps
    only the system's directories)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    path = os.pathsep.join(p for p in os.environ.get('PATH', '').split(
        os.pathsep) if os.path.dirname(sys.executable) != p)
    return dict(os.environ, PORT=str(port), PYTHON=sys.executable, PATH=path)


def final_weights(work_dir):
    """state_dict of the checkpoint a work dir's last_checkpoint names."""
    import torch
    with open(os.path.join(work_dir, 'last_checkpoint')) as f:
        ckpt = torch.load(f.read().strip(), weights_only=True)
    return ckpt['state_dict']
