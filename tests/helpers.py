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


def hf_blip_forward(model, tokenizer, texts, pixels, layers):
    """A Hugging Face ``BlipForImageTextRetrieval``'s own forward of every
    prompt against one image, with the pre-softmax cross-attention scores of
    ``layers`` taken from its query/key projections (the oracle the tests
    compare our maps with). Returns (output, mask [P, T], {layer: scores
    [P, H, T, N]}); differentiable, so call it under no_grad where no
    gradient is wanted."""
    import math
    enc = tokenizer(list(texts), padding=True, return_tensors='pt')
    ids, mask = enc['input_ids'], enc['attention_mask']
    P, T = ids.shape
    seen, hooks = {}, []
    for l in layers:
        att = model.text_encoder.encoder.layer[l].crossattention.self
        hooks.append(att.query.register_forward_hook(
            lambda m, i, o, l=l: seen.__setitem__(('q', l), o)))
        hooks.append(att.key.register_forward_hook(
            lambda m, i, o, l=l: seen.__setitem__(('k', l), o)))
    try:
        out = model(input_ids=ids, attention_mask=mask,
                    pixel_values=pixels.expand(P, -1, -1, -1),
                    interpolate_pos_encoding=True, use_itm_head=True)
    finally:
        for h in hooks:
            h.remove()
    H = model.config.text_config.num_attention_heads
    d = model.config.text_config.hidden_size // H
    scores = {}
    for l in layers:
        q = seen[('q', l)].view(P, T, H, d).transpose(1, 2)
        k = seen[('k', l)].view(P, -1, H, d).transpose(1, 2)
        scores[l] = q @ k.transpose(-1, -2) / math.sqrt(d)  # [P, H, T, N]
    return out, mask, scores


def run_adapter(adapter, x, tokens, layers, **settings):
    """``adapter(x, tokens, layers)`` under other map settings
    (``itm_reduce``, ``map_mode``, ``gradcam_head``) than it was built
    with, restored afterwards: the tests compare modes on one model."""
    old = {k: getattr(adapter, k) for k in settings}
    for k, v in settings.items():
        setattr(adapter, k, v)
    try:
        return adapter(x, tokens, layers)
    finally:
        for k, v in old.items():
            setattr(adapter, k, v)
