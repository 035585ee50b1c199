"""The pretraining objectives, one step each: ITC + ITM with hard
negatives (BLIP, ALBEF; ALBEF's masked language modelling), LLaVA's
captioning and yes/no answers, and the bag-of-words warm-up."""
import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..captions import (SHAPES, TEMPLATES, caption_text, is_true, positive,
                        word_swap_negative)
from ..tiny_vlms import SPECIAL_TOKENS
from ..world import BACKGROUNDS, COLOURS, SIZES
from .arches import (ARCHES, LLAVA_ATTRIBUTES, LLAVA_CAPTION, LLAVA_QUESTION,
                     LLAVA_TEMPLATE, MEAN, STD)


def to_pixels(images_uint8):
    x = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).float()
    return (x - MEAN) / STD


def tokenize(tok, texts):
    enc = tok(texts, padding=True, return_tensors='pt')
    return enc['input_ids'], enc['attention_mask']


def itm_loss(arch, model, image_embeds, ids, mask, labels, tokens='all'):
    """ITM cross-entropy at every non-padding token (so that both 'first'
    and 'max_real' token reductions are trained) or, with ``tokens='first'``,
    at the first only; accuracy at the first."""
    logits = arch.itm_logits(model, image_embeds, ids, mask)  # [N, T, 2]
    tgt = labels[:, None].expand(-1, logits.shape[1])
    ce = F.cross_entropy(logits.reshape(-1, 2), tgt.reshape(-1),
                         reduction='none').view(tgt.shape)
    m = mask.float()
    if tokens == 'first':
        m = torch.zeros_like(m)
        m[:, 0] = 1
    loss = (ce * m).sum() / m.sum()
    acc = (logits[:, 0].argmax(-1) == labels).float().mean()
    return loss, acc


@contextlib.contextmanager
def layer_drop(arch, model, p, rng):
    """LayerDrop (Fan et al., 2019) for one step: each cross-attending text
    layer is left out with probability ``p``, at least one kept, so no layer
    can leave the looking to the others (in the tiny models the first layers
    find the named things and the deeper ones, which the answer already
    reaches, attend elsewhere). Tried on the embedded world: it did not fix
    that (docs/en/embedded_world.md, "Honest reading"); off by default."""
    holder, attr, first = arch.cross_layers(model)
    layers = getattr(holder, attr)
    if p <= 0:
        yield
        return
    n = len(layers) - first
    keep = np.flatnonzero(rng.random(n) >= p)
    if keep.size == 0:
        keep = np.array([rng.integers(n)])
    setattr(holder, attr, torch.nn.ModuleList(
        list(layers[:first]) + [layers[first + int(i)] for i in keep]))
    try:
        yield
    finally:
        setattr(holder, attr, layers)


def itc_itm_step(model, tok, batch_imgs, batch_scenes, rng, args):
    """One ITC + ITM step (BLIP, ALBEF); a scene is (objects, background kinds)."""
    B = len(batch_scenes)
    arch = ARCHES[args.arch]
    pixels = to_pixels(batch_imgs)
    image_embeds = arch.image_tokens(model, pixels)
    pos = [positive(s, rng) for s in batch_scenes]
    pos_texts = [caption_text(c) for c in pos]
    ids, mask = tokenize(tok, pos_texts)

    # ITC on a unimodal text pass; targets from caption truth, because
    # synthetic captions repeat across images.
    t_feat = F.normalize(model.text_proj(arch.text_cls(model, ids, mask)), dim=-1)
    i_feat = F.normalize(model.vision_proj(image_embeds[:, 0]), dim=-1)
    truth = torch.tensor([[is_true(pos[i], batch_scenes[j]) for j in range(B)]
                          for i in range(B)], dtype=torch.float32)  # [text, image]
    scale = model.itc_logit_scale.exp().clamp(max=100)
    sim = scale * t_feat @ i_feat.t()
    loss_itc = 0.5 * (
        -(truth / truth.sum(1, keepdim=True) * sim.log_softmax(1)).sum(1).mean()
        - (truth.t() / truth.t().sum(1, keepdim=True)
           * sim.t().log_softmax(1)).sum(1).mean())

    loss_cap = torch.zeros(())
    if args.caption_weight:
        logits = arch.caption_logits(model, image_embeds, ids, mask)
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        loss_cap = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                   target.reshape(-1), ignore_index=-100)

    loss_mlm = torch.zeros(())
    if args.mlm_weight:
        masked, target = mask_tokens(tok, ids, mask, args.mlm_prob, rng)
        logits = arch.mlm_logits(model, image_embeds, masked, mask)
        loss_mlm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                   target.reshape(-1), ignore_index=-100)

    # ITM: positives, word-swap negatives, and one mined negative per image
    # (another image's caption that is false here, sampled by similarity).
    texts, img_idx, labels = list(pos_texts), list(range(B)), [1] * B
    for i, scene in enumerate(batch_scenes):
        if rng.random() < args.presence:  # every name, true or false
            present = {o['shape'] for o in scene[0]} | set(scene[1])
            article = 'a ' if rng.random() < 0.5 else ''
            for name in SHAPES + BACKGROUNDS:
                texts.append(TEMPLATES[0].format(
                    (article if name in SHAPES else '') + name))
                img_idx.append(i)
                labels.append(int(name in present))
        for _ in range(args.negatives):
            texts.append(caption_text(word_swap_negative(pos[i], scene, rng)))
            img_idx.append(i)
            labels.append(0)
    with torch.no_grad():
        w = sim.t().softmax(1).masked_fill(truth.t() > 0, 0)  # [image, text]
    for i in range(B):
        if w[i].sum() > 0:
            j = int(torch.multinomial(w[i] / w[i].sum(), 1))
            texts.append(pos_texts[j])
            img_idx.append(i)
            labels.append(0)
    ids2, mask2 = tokenize(tok, texts)
    with layer_drop(arch, model, args.layer_drop, rng):
        loss_itm, acc = itm_loss(arch, model, image_embeds[img_idx], ids2,
                                 mask2, torch.tensor(labels), args.itm_tokens)
    loss = args.itc_weight * loss_itc + loss_itm + \
        args.caption_weight * loss_cap + args.mlm_weight * loss_mlm
    return loss, dict(itc=float(loss_itc), itm=float(loss_itm),
                      itm_acc=float(acc), cap=float(loss_cap),
                      mlm=float(loss_mlm))


def mask_tokens(tok, ids, mask, prob, rng):
    """BERT's masking of the real non-special tokens of ``ids`` [B, T]:
    each chosen with probability ``prob`` (at least one per caption), then
    80 % [MASK], 10 % a random word, 10 % kept. Returns the masked ids and
    the targets (-100 where nothing is predicted)."""
    special = torch.tensor(tok.all_special_ids)
    real = (mask > 0) & ~torch.isin(ids, special)  # [B, T]
    draw = torch.from_numpy(rng.random(ids.shape)) < prob
    for b in range(ids.shape[0]):  # at least one word per caption
        if not (draw[b] & real[b]).any():
            cand = torch.nonzero(real[b]).flatten()
            draw[b, cand[int(rng.integers(len(cand)))]] = True
    chosen = draw & real
    target = ids.masked_fill(~chosen, -100)
    kind = torch.from_numpy(rng.random(ids.shape))
    masked = ids.clone()
    masked[chosen & (kind < 0.8)] = tok.mask_token_id
    swap = chosen & (kind >= 0.8) & (kind < 0.9)
    words = torch.from_numpy(rng.integers(len(SPECIAL_TOKENS), len(tok),
                                          size=ids.shape))
    masked[swap] = words[swap]
    return masked, target


def llava_step(model, tok, batch_imgs, batch_scenes, rng, args):
    """One LLaVA step: captioning conditioned on the image tokens; the
    adapter's yes/no question about names that are present and absent (the
    hard negatives), as LLaVA's instruction data would ask them; and
    questions about a named object's colour or the ground under it, whose
    answer is only where that object is."""
    img, ids, target, kind = llava_rows(tok, batch_scenes, rng, args.questions,
                                        args.attribute_questions)
    logits = llava_logits(model, tok, to_pixels(batch_imgs), img, ids)  # [R, T, V]
    ce = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100,
                         reduction='none')  # [R, T]
    counted = (target != -100).float()
    cap, asked = kind == CAPTION_ROW, kind != CAPTION_ROW
    loss_cap = (ce * counted)[cap].sum() / counted[cap].sum()
    loss_q = (ce * counted)[asked].sum() / counted[asked].sum()
    rows = torch.arange(len(ids))
    last = counted.argmax(1)  # a question's one answer position
    yes, no = (tok.convert_tokens_to_ids(a) for a in ('Yes', 'No'))
    with torch.no_grad():
        answer = logits[rows, last][:, [yes, no]]  # [R, 2]
        acc = ((answer[:, 0] > answer[:, 1]) ==
               (target[rows, last] == yes))[kind == YES_NO_ROW]
    loss = args.caption_weight * loss_cap + loss_q
    return loss, dict(itc=0.0, itm=float(loss_q.detach()),
                      itm_acc=float(acc.float().mean()),
                      cap=float(loss_cap.detach()), mlm=0.0)


CAPTION_ROW, YES_NO_ROW, ATTRIBUTE_ROW = 0, 1, 2


def llava_rows(tok, scenes, rng, questions, attribute_questions=0):
    """The text rows of a LLaVA step, in the adapter's chat format: per
    image, its caption after LLAVA_CAPTION; ``questions`` yes/no questions
    (even: a present name, answer Yes; odd: an absent one, No); and
    ``attribute_questions`` about a present shape (alternately its colour
    and the background kind under it, answered in one word).

    Returns the image of each row [R], input ids [R, T] (right-padded),
    targets [R, T] (the next token where a loss is taken, else -100) and
    each row's kind [R] (CAPTION_ROW, YES_NO_ROW, ATTRIBUTE_ROW)."""
    head, tail = LLAVA_TEMPLATE.split('<image>')[1].split('{}')
    names = list(SHAPES) + list(BACKGROUNDS)
    yes, no = (tok.convert_tokens_to_ids(a) for a in ('Yes', 'No'))
    rows = []  # (image, input ids, targets, kind)

    def ask(i, question, answer, kind):
        q = tok(head + question + tail, add_special_tokens=False)['input_ids']
        rows.append((i, q, [-100] * (len(q) - 1) + [answer], kind))

    for i, scene in enumerate(scenes):
        cap = tok(head + LLAVA_CAPTION + tail, add_special_tokens=False)['input_ids']
        words = tok(' ' + caption_text(positive(scene, rng)),
                    add_special_tokens=False)['input_ids'] + [tok.eos_token_id]
        rows.append((i, cap + words[:-1], [-100] * (len(cap) - 1) + words,
                     CAPTION_ROW))
        present = {o['shape'] for o in scene[0]} | set(scene[1])
        pools = ([n for n in names if n in present],
                 [n for n in names if n not in present])
        for k in range(questions):
            pool = pools[k % 2]
            ask(i, LLAVA_QUESTION.format(str(pool[int(rng.integers(len(pool)))])),
                (yes, no)[k % 2], YES_NO_ROW)
        for k in range(attribute_questions):
            o = scene[0][int(rng.integers(len(scene[0])))]
            question, key = LLAVA_ATTRIBUTES[k % 2]
            ask(i, question.format(o['shape']),
                tok.convert_tokens_to_ids(o[key]), ATTRIBUTE_ROW)
    T = max(len(r[1]) for r in rows)
    ids = torch.full((len(rows), T), tok.pad_token_id, dtype=torch.long)
    target = torch.full((len(rows), T), -100, dtype=torch.long)
    for r, (_, x, t, _) in enumerate(rows):
        ids[r, :len(x)] = torch.tensor(x)
        target[r, :len(t)] = torch.tensor(t)
    return (torch.tensor([r[0] for r in rows]), ids, target,
            torch.tensor([r[3] for r in rows]))


def llava_logits(model, tok, pixels, img, ids):
    """Next-token logits [R, T, V] of text rows ``ids`` [R, T] after their
    images ``img`` [R] of ``pixels`` [B, 3, H, W].

    The language model reads [prefix, image tokens] once per image (a KV
    cache, in the graph) and every row of that image against it, as
    ``LLaVAAdapter`` reads its questions; rows are right-padded, so causal
    attention keeps padding out of every real token."""
    from transformers import DynamicCache

    from ...models.adapters.llava import cache_kwarg, output_cache
    lm = model.model.language_model
    embed = lm.get_input_embeddings()
    feats = model.model.get_image_features(
        pixel_values=pixels,
        vision_feature_layer=model.config.vision_feature_layer,
        vision_feature_select_strategy=model.config.vision_feature_select_strategy)
    feats = torch.stack(list(feats.pooler_output))  # [B, N, D]
    prefix = torch.tensor(tok(LLAVA_TEMPLATE.split('<image>')[0])['input_ids'])  # [S0], BOS first
    shared = torch.cat([embed(prefix)[None].expand(len(feats), -1, -1),
                        feats], 1)  # [B, S0 + N, D]
    cache = output_cache(lm(inputs_embeds=shared, use_cache=True))
    past = DynamicCache(ddp_cache_data=[(l.keys[img], l.values[img])
                                        for l in cache.layers],
                        config=model.config)  # [R, Hkv, S0 + N, d] per layer
    hidden = lm(inputs_embeds=embed(ids), use_cache=True,
                **cache_kwarg(lm, past)).last_hidden_state  # [R, T, D]
    return model.lm_head(hidden)


def caption_words(scene):
    """The content words of an image's full caption (shape, colour, size
    of every object, and the background kinds)."""
    objects, backgrounds = scene
    return {w for o in objects for w in (o['shape'], o['colour'], o['size'])} \
        | set(backgrounds)


def bow_stage(model, imgs, scenes, rng, args):
    """Warm up the vision encoder: from its mean-pooled patch tokens, a
    temporary linear head predicts which content words the caption holds.
    Without it, ITM sits on an attention plateau (cross-attention starts
    uniform and its gradient into the image side is tiny)."""
    vocab = list(SHAPES) + list(COLOURS) + list(SIZES) + list(BACKGROUNDS)
    arch = ARCHES[args.arch]
    head = torch.nn.Linear(args.width, len(vocab))
    params = list(arch.vision(model).parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    t0 = time.time()
    for step in range(args.bow_steps):
        idx = rng.choice(len(imgs), size=args.batch, replace=False)
        target = torch.tensor([[w in caption_words(scenes[i]) for w in vocab]
                               for i in idx], dtype=torch.float32)
        feats = arch.image_tokens(model, to_pixels(imgs[idx]))[:, 1:]
        if args.bow_pool == 'mean':
            logits = head(feats.mean(1))  # [B, V]
        else:
            logits = head(feats).amax(1)  # [B, N, V] -> [B, V]
        loss = F.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % args.log_every == 0 or step == 0:
            acc = ((logits > 0).float() == target).float().mean()
            print(f'bow step {step + 1}/{args.bow_steps}  loss {loss.item():.3f}'
                  f'  word acc {acc.item():.3f}  {(time.time() - t0) / 60:.1f} min',
                  flush=True)
    return loss.item()


# ---------------------------------------------------------------- presence


# an architecture's ``objective`` -> its training step
STEPS = {'itc_itm': itc_itm_step, 'llava': llava_step}
