"""The pretraining run: render the images, warm up, train, save, judge."""
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch

from ..world import render
from .arches import ARCHES, build_model
from .report import heldout_presence_auroc, write_readme
from .steps import STEPS, bow_stage


def pretrain(args, argv, tmp):
    """Train, evaluate and save into the folder ``tmp``; returns the
    report."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    tok = ARCHES[args.arch].tokenizer(tmp)
    model = build_model(tok, args)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'tiny {ARCHES[args.arch].name}: {n_params / 1e6:.2f} M parameters; rendering '
          f'{args.pool} pretraining images...', flush=True)
    imgs, scenes = [], []
    for i in range(args.pool):
        img, _, o, bg = render(args.seed, 'pretrain', i)  # masks discarded
        imgs.append(img)
        scenes.append(([x.to_json() for x in o], bg))
    imgs = np.stack(imgs)
    single = np.array([i for i, s in enumerate(scenes) if len(s[0]) == 1])
    model.train()
    bow_loss = bow_stage(model, imgs, scenes, rng, args) if args.bow_steps else None
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) *
        0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    model.train()
    hist = []
    for step in range(args.steps):
        one = step < args.curriculum * args.steps
        idx = rng.choice(single if one else len(imgs), size=args.batch,
                         replace=False)
        loss, stats = STEPS[ARCHES[args.arch].objective](
            model, tok, imgs[idx], [scenes[i] for i in idx], rng, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        hist.append(stats)
        if (step + 1) % args.log_every == 0 or step == 0:
            recent = hist[-args.log_every:]
            avg = {k: np.mean([h[k] for h in recent]) for k in recent[0]}
            el = time.time() - t0
            print(f'step {step + 1}/{args.steps}  itc {avg["itc"]:.3f}  '
                  f'cap {avg["cap"]:.3f}  mlm {avg["mlm"]:.3f}  itm '
                  f'{avg["itm"]:.3f}  itm_acc {avg["itm_acc"]:.3f}  '
                  f'{el / 60:.1f} min (eta {el / (step + 1) * (args.steps - step - 1) / 60:.1f} min)',
                  flush=True)
    model.eval()
    if hasattr(model, 'itc_logit_scale'):
        del model.itc_logit_scale  # not part of the architecture
    ARCHES[args.arch].save(model, tmp)
    auroc = heldout_presence_auroc(tmp, args.seed, args.heldout, args.arch)
    wall = time.time() - t0  # everything, the AUROC evaluation included
    final = {k: float(np.mean([h[k] for h in hist[-200:]])) for k in hist[0]}
    report = dict(
        command='python tools/pretrain_vlm.py ' + ' '.join(
            sys.argv[1:] if argv is None else argv),
        arch=args.arch, seed=args.seed, steps=args.steps, batch=args.batch,
        wall_time_min=round(wall / 60, 2), threads=args.threads,
        machine=platform.processor() or platform.machine(),
        parameters=n_params, heldout=args.heldout, final_train=final,
        bow_pool=args.bow_pool, bow_final_loss=bow_loss,
        caption_weight=args.caption_weight, itm_tokens=args.itm_tokens,
        layer_drop=args.layer_drop, mlm_weight=args.mlm_weight,
        mlm_prob=args.mlm_prob if args.mlm_weight else None,
        questions=args.questions if args.arch == 'llava' else None,
        attribute_questions=(args.attribute_questions
                             if args.arch == 'llava' else None),
        presence_auroc=auroc)
    with open(os.path.join(tmp, 'pretrain_report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    write_readme(tmp, report)
    return report
