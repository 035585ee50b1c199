"""ClassNamesCheckHook: the model's classes against the dataset's, before
any image is segmented or trained on."""
import re
import warnings
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils import unwrap_model

# words that class lists add to the same thing ("wall-other-merged")
_FILLER = {'other', 'stuff', 'merged', ''}


def _words(name: str) -> frozenset:
    words = set(re.split(r'[\s\-_]+', name.strip().lower())) - _FILLER
    return frozenset('wood' if w == 'wooden' else w for w in words)


def same_class(name: str, synonyms: Sequence[str]) -> bool:
    """Whether the dataset's class ``name`` is one of ``synonyms``: equal
    ignoring case, spaces, hyphens and underscores ("diningtable", "dining
    table"), or the same words in any order less filler words
    ("ceiling-tile", "tile ceiling"; "wall-other-merged", "wall")."""
    def squash(x):
        return re.sub(r'[\s_\-]+', '', x.lower())
    return any(squash(s) == squash(name) or _words(s) == _words(name)
               for s in synonyms)


def compare_classes(dataset_classes: Sequence[str],
                    model_classes: Sequence[Sequence[str]],
                    has_background: bool) -> Optional[str]:
    """None when the lists name the same classes in the same order
    (label i is model class i; the background's name is free); raises
    ValueError when they name the same classes in another order (every
    label would be scored as another class); otherwise a warning text
    listing the classes that differ."""
    skip = 1 if has_background else 0
    pairs = list(zip(range(skip, len(dataset_classes)), dataset_classes[skip:]))
    differ = [(i, d) for i, d in pairs
              if i >= len(model_classes) or not same_class(d, model_classes[i])]
    if not differ and len(dataset_classes) == len(model_classes):
        return None
    model_names = [c[0] for c in model_classes]
    found = {i: [j for j in range(skip, len(model_classes))
                 if same_class(d, model_classes[j])] for i, d in pairs}
    if len(dataset_classes) == len(model_classes) and \
            all(len(js) == 1 for js in found.values()) and \
            len({js[0] for js in found.values()}) == len(found):
        raise ValueError(
            'model.class_names lists the dataset\'s classes in another order, '
            'so every label would be scored as another class. Dataset order: '
            f'{list(dataset_classes)}; model order: {model_names}. Reorder the '
            'class-name file (line i is label i) to the dataset\'s order.')
    lines = [f'label {i}: dataset {d!r}, model '
             + (repr(model_names[i]) if i < len(model_names) else 'none')
             for i, d in differ]
    if len(dataset_classes) != len(model_classes):
        lines.append(f'the dataset has {len(dataset_classes)} classes, the '
                     f'model {len(model_classes)}')
    return ('model.class_names and the dataset name different classes at '
            'the same label index; the scores compare them as if they were '
            'the same. If the names are synonyms, ignore this; otherwise '
            'fix the class-name file. ' + '; '.join(lines))


@HOOKS.register_module()
class ClassNamesCheckHook(Hook):
    """Compare the model's class names with the ``classes`` of each dataset
    the run reads (test, validation, training), once, before anything else.

    Same names in another order: an error naming both orders. Other names at
    some indices: one warning listing them (a synonym the matching does not
    know also lands here). Datasets without class names are not checked.
    It logs what the model runs with: its classes, prompt count and layers.
    """

    priority = 'HIGHEST'

    def __init__(self):
        self._checked = set()

    def before_train(self, runner) -> None:
        self._check(runner, 'train')

    def before_val(self, runner) -> None:
        self._check(runner, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, 'test')

    def _check(self, runner, split: str) -> None:
        model = unwrap_model(runner.model)
        prompts = getattr(model, 'prompts', None)
        loader = getattr(runner, f'{split}_dataloader', None)
        meta = getattr(getattr(loader, 'dataset', None), 'metainfo', None) or {}
        classes: List[str] = list(meta.get('classes') or [])
        if prompts is None or not classes:
            return
        key = (split, tuple(classes), prompts.classes)
        if key in self._checked:
            return
        self._checked.add(key)
        layers = getattr(model, 'layers', None)
        runner.logger.info(
            f'{split}: {len(prompts.classes)} classes {prompts.class_names}, '
            f'{prompts.num_prompts} prompts, layers '
            + (str(layers) if layers is not None else 'to be chosen by '
               'InfoScore'))
        text = compare_classes(classes, prompts.classes,
                               prompts.has_background)
        if text:
            warnings.warn(f'{split} dataset: {text}')
            runner.logger.warning(f'{split} dataset: {text}')
