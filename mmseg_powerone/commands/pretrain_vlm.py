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
import json
import os
import sys

import torch

from ..shapes.pretrain import ARCHES, pretrain
from ..utils.io import atomic_dir
from ..utils.resources import load_config
from .cli import tool_parser


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
