"""How a pretrained tiny VLM is judged and described: presence AUROC of
its matching score on held-out images, and the README saved with it."""
import os

import numpy as np
import torch

from ...evaluation import presence_auroc
from ..captions import SHAPES
from ..world import CLASSES, render
from .arches import ARCHES
from .steps import to_pixels


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
                adapter.itm_reduce = mode  # the same weights, each rule
                scores[key].append(adapter(x, tokens, [0])['itm'][:, 1:])
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
