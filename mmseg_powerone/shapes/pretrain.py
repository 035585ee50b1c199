"""Pretrain the embedded tiny BLIP, ALBEF or LLaVA on synthetic
image-caption pairs.

The model is the real BLIP ITM architecture (Hugging Face
``BlipForImageTextRetrieval``), with ``--arch albef`` ALBEF's (this
package's ``ALBEFModel``, saved as an official-layout ``albef.pth``), or
with ``--arch llava`` LLaVA's (Hugging Face ``LlavaForConditionalGeneration``
in the llava-hf layout), at a tiny size. It learns from captions only
(never a mask). BLIP and ALBEF: image-text contrastive (ITC) and image-text
matching (ITM) with hard negatives, i.e. captions with one word swapped and
captions of other images mined from the contrastive scores (ALBEF also
masked language modelling, ``--mlm-weight``). LLaVA: captioning conditioned
on the image tokens and the yes/no question its adapter asks, about present
and absent names. Before maps are judged, it reports per-class presence
AUROC of the matching score (ITM of "Image of {name}.", or LLaVA's P(yes))
on held-out images.

The shipped models' recipes are config files; with no other flags they
reproduce the shipped weights (options given after a recipe override it):

    python tools/pretrain_vlm.py configs/pretrain/blip-tiny-shapes.py
    python tools/pretrain_vlm.py configs/pretrain/albef-tiny-shapes.py
    python tools/pretrain_vlm.py configs/pretrain/llava-tiny-shapes.py
"""
import contextlib
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..evaluation import presence_auroc
from ..utils.cli import tool_parser
from ..utils.io import atomic_dir
from ..utils.resources import load_config
from .captions import (SHAPES, TEMPLATES, caption_text, is_true, positive,
                       word_swap_negative)
from .tiny_vlms import SPECIAL_TOKENS, save_tokenizer, tiny_blip_config
from .world import BACKGROUNDS, CLASSES, COLOURS, SIZES, render

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
WORDS = list(CLASSES) + list(COLOURS) + list(SIZES) + list(BACKGROUNDS) + [
    'there', 'is', 'on', 'with']


def parser():
    p = tool_parser(__doc__)
    p.add_argument('recipe', nargs='?', default=None,
                   help='a recipe config (configs/pretrain/*.py): its keys '
                   'are these options\' names; options given here override it')
    p.add_argument('--out', default=None, help='output directory (Hugging '
                   'Face layout: weights + tokenizer); required, here or in '
                   'the recipe')
    p.add_argument('--arch', choices=sorted(ARCHES), default='blip')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=1300)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--negatives', type=int, default=1,
                   help='word-swap negatives per image (plus one mined)')
    p.add_argument('--presence', type=float, default=1.0,
                   help='fraction of images that also get "image of {shape}." '
                   'for every shape, true or false')
    p.add_argument('--lr', type=float, default=5e-4)
    p.add_argument('--itc-weight', type=float, default=0.5)
    p.add_argument('--bow-steps', type=int, default=800,
                   help='first stage: the vision encoder predicts the words '
                   'of each caption (bag-of-words captioning)')
    p.add_argument('--bow-pool', choices=('mean', 'max'), default='max',
                   help='warm-up head per patch with the max over patches '
                   '(each word must be seen in some patch, which keeps '
                   'evidence local; the shipped models), or on the mean of '
                   'the patch tokens (segments far worse)')
    p.add_argument('--pool', type=int, default=20000,
                   help='pretraining images (a split of their own)')
    p.add_argument('--curriculum', type=float, default=0.15,
                   help='fraction of steps on one-object images only')
    p.add_argument('--heldout', type=int, default=600,
                   help='held-out images for presence AUROC')
    p.add_argument('--caption-weight', type=float, default=0.0,
                   help='weight of a captioning loss (BLIP only): the text '
                   'encoder run causally from [DEC] predicts each next caption '
                   'word through the same cross-attention, as BLIP\'s decoder '
                   'shares it, so every token learns to look at what it names')
    p.add_argument('--mlm-weight', type=float, default=0.0,
                   help='ALBEF: weight of masked language modelling through '
                   'the fusion layers (as ALBEF pretrains beside ITC and '
                   'ITM): masked caption words are predicted from the text '
                   'around them and the image')
    p.add_argument('--mlm-prob', type=float, default=0.15,
                   help='share of caption tokens masked for --mlm-weight '
                   '(80%% [MASK], 10%% a random word, 10%% kept, as BERT)')
    p.add_argument('--questions', type=int, default=4,
                   help='LLaVA: yes/no questions per image ("Is there a '
                   '{name} in the image? Answer yes or no."), half about '
                   'present names, half about absent ones')
    p.add_argument('--attribute-questions', type=int, default=0,
                   help='LLaVA: questions per image about one of its shapes '
                   '("What colour is the {name}?", "What is under the '
                   '{name}?"), answered in one word: the answer is only '
                   'where that shape is')
    p.add_argument('--itm-tokens', choices=('all', 'first'), default='all',
                   help="tokens the ITM loss reads: every non-padding token "
                   "(trains 'max_real' and 'first') or the first only, as BLIP "
                   "does (then use the model with itm_reduce='first')")
    p.add_argument('--layer-drop', type=float, default=0.0,
                   help='LayerDrop in the ITM pass: each cross-attending text '
                   'layer is skipped for a step with this probability (one is '
                   'always kept), so no layer can leave the looking to others')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--vision-layers', type=int, default=4)
    p.add_argument('--text-layers', type=int, default=4)
    p.add_argument('--fusion-layer', type=int, default=2,
                   help='ALBEF: first text layer with cross-attention')
    p.add_argument('--patch', type=int, default=8)
    p.add_argument('--log-every', type=int, default=100)
    p.add_argument('--overwrite', action='store_true')
    return p


def read_recipe(path, p):
    """A recipe config's settings, checked against the options."""
    recipe = {k: v for k, v in load_config(path).to_dict().items()
              if not k.startswith('_')}
    known = {a.dest for a in p._actions} - {'help', 'recipe'}
    unknown = sorted(set(recipe) - known)
    if unknown:
        p.error(f'{path}: unknown recipe keys {unknown}; the keys are the '
                f"options' names: {sorted(known)}.")
    return recipe


def parse_args(argv=None):
    """The options: a recipe's values as defaults, the command line's
    over them."""
    p = parser()
    args = p.parse_args(argv)
    if args.recipe is not None:
        p.set_defaults(**read_recipe(args.recipe, p))
        args = p.parse_args(argv)
    if args.out is None:
        p.error('give --out DIR (or a recipe that sets out).')
    if args.mlm_weight and args.arch != 'albef':
        p.error('--mlm-weight is for --arch albef (the fusion encoder)')
    if args.caption_weight and args.arch == 'albef':
        p.error('--caption-weight is for --arch blip or llava (ALBEF has no '
                'decoder)')
    return args


# ---------------------------------------------------------------- model
class BlipArch:
    """The tiny BLIP: Hugging Face BlipForImageTextRetrieval."""
    name = 'BLIP'

    prompt_template = 'Image of {}.'  # of the presence AUROC
    contrastive = True  # has ITC projections (a learnable temperature added)

    @staticmethod
    def tokenizer(out_dir):
        return save_tokenizer(out_dir, WORDS)

    @staticmethod
    def step(*args):
        return itc_itm_step(*args)

    @staticmethod
    def build(tok, args):
        from transformers import BlipForImageTextRetrieval
        cfg = tiny_blip_config(
            vocab_size=len(tok), image_size=64, patch_size=args.patch,
            text_layers=args.text_layers, text_dim=args.width, text_heads=4,
            vision_layers=args.vision_layers, vision_dim=args.width,
            vision_heads=4, max_tokens=40, embed_dim=64)
        model = BlipForImageTextRetrieval(cfg)
        model.config._attn_implementation = 'eager'
        return model

    @staticmethod
    def vision(model):
        return model.vision_model

    @staticmethod
    def image_tokens(model, pixels):  # [B, 1 + N, D]
        return model.vision_model(pixel_values=pixels).last_hidden_state

    @staticmethod
    def text_cls(model, ids, mask):  # unimodal text [CLS], [B, D]
        return model.text_encoder(input_ids=ids,
                                  attention_mask=mask).last_hidden_state[:, 0]

    @staticmethod
    def itm_logits(model, image_embeds, ids, mask):  # [N, T, 2]
        out = model.text_encoder(input_ids=ids, attention_mask=mask,
                                 encoder_hidden_states=image_embeds,
                                 encoder_attention_mask=torch.ones(
                                     image_embeds.shape[:2], dtype=torch.long))
        return model.itm_head(out.last_hidden_state)

    @staticmethod
    def caption_logits(model, image_embeds, ids, mask):  # [B, T, V]
        dec = ids.clone()
        dec[:, 0] = model.config.text_config.bos_token_id  # [DEC] for [CLS]
        out = model.text_encoder(input_ids=dec, attention_mask=mask,
                                 encoder_hidden_states=image_embeds,
                                 is_decoder=True)
        # the word embeddings as output layer: nothing to drop when saving
        words = model.text_encoder.embeddings.word_embeddings.weight
        return out.last_hidden_state @ words.t()

    @staticmethod
    def cross_layers(model):  # (encoder holding .layer, first cross-attending index)
        return model.text_encoder.encoder, 0

    @staticmethod
    def save(model, out_dir):
        model.save_pretrained(out_dir)

    @staticmethod
    def adapter(out_dir):
        from mmseg_powerone.models import BLIPAdapter
        return BLIPAdapter(pretrained=out_dir)


class AlbefArch:
    """The tiny ALBEF: ALBEFModel, saved in the official checkpoint layout."""
    name = 'ALBEF'

    prompt_template = 'Image of {}.'  # of the presence AUROC
    contrastive = True  # has ITC projections (a learnable temperature added)

    @staticmethod
    def tokenizer(out_dir):
        return save_tokenizer(out_dir, WORDS)

    @staticmethod
    def step(*args):
        return itc_itm_step(*args)

    @staticmethod
    def build(tok, args):
        from mmseg_powerone.shapes.tiny_vlms import tiny_albef_model
        return tiny_albef_model(
            vocab_size=len(tok), image_size=64, patch_size=args.patch,
            text_layers=args.text_layers, fusion_layer=args.fusion_layer,
            text_dim=args.width, text_heads=4, vision_layers=args.vision_layers,
            vision_dim=args.width, vision_heads=4, max_tokens=40, embed_dim=64)

    @staticmethod
    def vision(model):
        return model.visual_encoder

    @staticmethod
    def image_tokens(model, pixels):
        return model.visual_encoder(pixels)

    @staticmethod
    def text_cls(model, ids, mask):
        return model.encode_text(ids, mask)[:, 0]

    @staticmethod
    def itm_logits(model, image_embeds, ids, mask):
        fused = model.fuse(model.encode_text(ids, mask), mask, image_embeds)
        return model.itm_head(fused)

    @staticmethod
    def mlm_logits(model, image_embeds, ids, mask):  # [B, T, V]
        fused = model.fuse(model.encode_text(ids, mask), mask, image_embeds)
        # the word embeddings as output layer: nothing to drop when saving;
        # scaled by 1/sqrt(width), as both sides are of norm ~sqrt(width)
        # (layer-normed states, N(0, 1) embeddings)
        words = model.text_encoder.embeddings.word_embeddings.weight
        return fused @ words.t() / words.shape[1] ** 0.5

    @staticmethod
    def cross_layers(model):
        return model.text_encoder.encoder, model.text_cfg.fusion_layer

    @staticmethod
    def save(model, out_dir):
        from ..models.vlms.albef import save_albef
        save_albef(model, os.path.join(out_dir, 'albef.pth'))

    @staticmethod
    def adapter(out_dir):
        from mmseg_powerone.models import ALBEFAdapter
        return ALBEFAdapter(checkpoint=os.path.join(out_dir, 'albef.pth'),
                            tokenizer=out_dir, vision_heads=4, text_heads=4)


class LlavaArch:
    """The tiny LLaVA: Hugging Face ``LlavaForConditionalGeneration`` (CLIP
    ViT, projector, Llama), saved with its tokenizer in the llava-hf
    layout. It has no ITC or ITM head: it learns from captioning
    conditioned on the image tokens and from the yes/no question the
    adapter asks (:func:`llava_step`)."""
    name = 'LLaVA'
    prompt_template = '{}'  # the adapter puts the name into its question
    contrastive = False

    @staticmethod
    def step(*args):
        return llava_step(*args)

    @staticmethod
    def tokenizer(out_dir):
        from .tiny_vlms import save_llava_tokenizer
        return save_llava_tokenizer(out_dir, LLAVA_WORDS)

    @staticmethod
    def build(tok, args):
        from transformers import LlavaForConditionalGeneration
        from .tiny_vlms import tiny_llava_config
        cfg = tiny_llava_config(
            tok, image_size=64, patch_size=args.patch,
            text_layers=args.text_layers, text_dim=args.width, text_heads=4,
            kv_heads=2, vision_layers=args.vision_layers,
            vision_dim=args.width)
        model = LlavaForConditionalGeneration(cfg)
        model.set_attn_implementation('sdpa')
        return model

    @staticmethod
    def vision(model):
        return model.model.vision_tower

    @staticmethod
    def image_tokens(model, pixels):  # [B, 1 + N, D] of the feature layer
        layer = model.config.vision_feature_layer
        out = model.model.vision_tower(pixel_values=pixels,
                                       output_hidden_states=True)
        return out.hidden_states[layer]

    @staticmethod
    def cross_layers(model):
        return model.model.language_model, 0

    @staticmethod
    def save(model, out_dir):
        model.save_pretrained(out_dir)

    @staticmethod
    def adapter(out_dir):
        from mmseg_powerone.models import LLaVAAdapter
        return LLaVAAdapter(pretrained=out_dir)


ARCHES = {'blip': BlipArch, 'albef': AlbefArch, 'llava': LlavaArch}
# LLaVA's chat format and question, as LLaVAAdapter's defaults
LLAVA_TEMPLATE = 'USER: <image>\n{} ASSISTANT:'
LLAVA_QUESTION = 'Is there a {} in the image? Answer yes or no.'
LLAVA_CAPTION = 'Describe the image.'
# questions about one object, answered by the word under its key
LLAVA_ATTRIBUTES = (('What colour is the {}?', 'colour'),
                    ('What is under the {}?', 'on'))
LLAVA_WORDS = WORDS + ['and', 'Describe', 'What', 'colour', 'under']


def build_model(tok, args):
    torch.manual_seed(args.seed)
    model = ARCHES[args.arch].build(tok, args)
    if not ARCHES[args.arch].contrastive:
        return model
    # ITC temperature, learnable as in BLIP (log scale); dropped on saving.
    model.register_parameter('itc_logit_scale',
                             torch.nn.Parameter(torch.tensor(math.log(1 / 0.07))))
    return model


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
    encoder, first = arch.cross_layers(model)
    layers = encoder.layer
    if p <= 0:
        yield
        return
    n = len(layers) - first
    keep = np.flatnonzero(rng.random(n) >= p)
    if keep.size == 0:
        keep = np.array([rng.integers(n)])
    encoder.layer = torch.nn.ModuleList(
        list(layers[:first]) + [layers[first + int(i)] for i in keep])
    try:
        yield
    finally:
        encoder.layer = layers


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

    from ..models.adapters.llava import cache_kwarg, output_cache
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
def heldout_presence_auroc(model_dir, seed, num_images, arch='blip'):
    """Per-class AUROC of ITM('Image of {name}.') for presence, on held-out
    images, through the same adapter the segmentor uses."""
    from mmseg_powerone.class_names import build_prompts
    adapter = ARCHES[arch].adapter(model_dir).eval()
    tokens = adapter.prompt_batch(build_prompts(
        list(CLASSES), ARCHES[arch].prompt_template))
    # report key -> itm_reduce: the key 'max' (kept for the reports already
    # shipped) holds the maximum over the real tokens
    modes = {'first': 'first', 'max': 'max_real'}
    scores, present = {key: [] for key in modes}, []
    with torch.no_grad():
        for start in range(0, num_images, 50):
            imgs = []
            for i in range(start, min(num_images, start + 50)):
                img, _, objects, _ = render(seed, 'heldout', i)
                imgs.append(img)
                present.append([s in {o.shape for o in objects} for s in SHAPES])
            x = to_pixels(np.stack(imgs))
            for key, mode in modes.items():
                scores[key].append(
                    adapter(x, tokens, [0], itm_reduce=mode)['itm'][:, 1:])
    present = np.array(present)
    return {mode: presence_auroc(torch.cat(s).numpy(), present, SHAPES)
            for mode, s in scores.items()}


def write_readme(out_dir, report):
    """README.md beside the weights, from the run's own report."""
    arch = report.get('arch', 'blip')
    auroc = report['presence_auroc']
    params = f"{report['parameters'] / 1e6:.2f}"
    warm_up = ('a bag-of-words captioning warm-up of the vision encoder '
               '(each caption word predicted by its best patch: max over '
               'patches)' if report.get('bow_pool') == 'max' else
               'a bag-of-words captioning warm-up of the vision encoder')
    if arch == 'llava':
        layout = (f'A `LlavaForConditionalGeneration` ({params} M parameters; '
                  'llava-hf layout: `config.json`, `model.safetensors`, '
                  'tokenizer; load with `LLaVAAdapter(pretrained=...)` as '
                  '`llava-hf/llava-1.5-7b-hf`)')
        losses = (
            'captioning conditioned on the image tokens ("Describe the '
            f'image.", weight {report.get("caption_weight")}), '
            f'{report.get("questions")} yes/no questions per image in the '
            "adapter's chat format (\"Is there a {name} in the image? Answer "
            'yes or no.\", half about names in the image, half about names '
            f'that are not) and {report.get("attribute_questions") or 0} '
            'questions about one of its shapes ("What colour is the {name}?", '
            '"What is under the {name}?"), answered in one word.')
        score = ('P(yes) (normalised over "Yes" and "No") for "Is there a '
                 '{name} in the image? Answer yes or no."')
        header = '| class | AUROC |\n|---|---|'
        rows = '\n'.join(f'| {n} | {auroc["first"][n]:.3f} |'
                         for n in list(SHAPES) + ['mean'])
        accuracy = 'yes/no answer accuracy'
    else:
        layout = (
            f'A `BlipForImageTextRetrieval` ({params} M parameters, Hugging '
            'Face layout: `config.json`, `model.safetensors`, tokenizer)'
            if arch == 'blip' else
            f'An ALBEF model ({params} M parameters; `albef.pth` in the layout '
            'of the official ALBEF checkpoints, BERT tokenizer; load with '
            '`ALBEFAdapter(checkpoint=.../albef.pth, tokenizer=..., '
            'vision_heads=4, text_heads=4)`)')
        losses = (
            'image-text contrastive + image-text matching with hard negatives '
            '(one word swapped: a shape, a colour, or the kind of background '
            'under an object; and captions of other images mined from '
            'contrastive scores).')
        if report.get('itm_tokens') == 'first':
            losses += ("\nThe ITM loss reads the first token only, as BLIP's "
                       "does: use the model with `itm_reduce='first'`.")
        if report.get('caption_weight'):
            losses += (f"\nBeside them, a captioning loss (weight "
                       f"{report['caption_weight']}): the text encoder, run "
                       'causally from [DEC], predicts each next caption word '
                       "through the same cross-attention, as BLIP's decoder "
                       'shares it.')
        if report.get('mlm_weight'):
            losses += (f"\nBeside them, masked language modelling through the "
                       f"fusion layers (weight {report['mlm_weight']}), as "
                       'ALBEF pretrains: masked caption words are predicted '
                       'from the words around them and the image.')
        score = 'the ITM score of "Image of {name}."'
        header = ("| class | AUROC (`itm_reduce='max_real'`) | AUROC (`'first'`) |"
                  '\n|---|---|---|')
        rows = '\n'.join(
            f'| {n} | {auroc["max"][n]:.3f} | {auroc["first"][n]:.3f} |'
            for n in list(SHAPES) + ['mean'])
        accuracy = 'ITM accuracy (first token)'
    text = f"""# Tiny {ARCHES[arch].name} for the embedded shapes world

{layout} trained by
`tools/pretrain_vlm.py` on synthetic image-caption pairs only (it never sees
a mask): {warm_up}, then
{losses}

Reproduce (from the repository root):

```bash
{report['command']}
```

- seed: {report['seed']}; steps: {report['steps']} (+ warm-up); batch: {report['batch']} images
- wall time: {report['wall_time_min']} min on {report['threads']} CPU threads
- final training {accuracy} (last 200 steps): {report['final_train']['itm_acc']:.3f}

Presence AUROC of {score} on
{report.get('heldout', 'held-out')} held-out images (a split the training never saw):

{header}
{rows}

The full report is `pretrain_report.json`.
"""
    with open(os.path.join(out_dir, 'README.md'), 'w') as f:
        f.write(text)


# ---------------------------------------------------------------- main
def pretrain_vlm(argv=None):
    """``tools/pretrain_vlm.py``: parse ``argv``, pretrain, save, report."""
    args = parse_args(argv)
    if os.path.exists(args.out) and os.listdir(args.out) and not args.overwrite:
        sys.exit(f'{args.out} exists and is not empty; pass --overwrite to '
                 'replace it.')
    threads, deterministic, warn_only = (
        torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.set_num_threads(args.threads)
        # With 2 threads some backward kernels accumulate in a thread-
        # dependent order: two runs of one command ended 0.06 apart in their
        # weights. Short runs were no slower with the deterministic kernels.
        torch.use_deterministic_algorithms(True)
        with atomic_dir(args.out) as tmp:  # nothing half-written is left
            report = pretrain(args, argv, tmp)
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)
    print(json.dumps(dict(
        final_train=report['final_train'], presence_auroc_mean={
            m: round(a['mean'], 4)
            for m, a in report['presence_auroc'].items()},
        wall_time_min=report['wall_time_min']), indent=2))
    return report


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
        loss, stats = ARCHES[args.arch].step(
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
