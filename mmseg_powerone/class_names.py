"""Class names and prompts: the one loader every part of the project uses.

A class-name file has one class per line; synonyms are comma-separated; the
first line is the background class (the format of mmseg open-vocabulary
projects such as SCLIP's ``cls_voc21.txt``)::

    sky, wall, tree, road
    aeroplane, airplane, plane
    bicycle

A name that holds a comma is quoted, as in CSV (``"aircraft, plane"``). A
name appears once; within one class, spellings that differ only in case
("tv, TV") are distinct prompts. Background always uses all of its names
(the reference represents background by many "stuff" words). Foreground
classes use their first name only, or all names with ``multi_prompt=True``.
Every used name is combined with every template to form a prompt.

Benchmarks without a background class (VOC20, Context59, ADE20K, ...) list
object classes only and build their prompts with ``has_background=False``:
then every class, the first included, is an object class.
"""
import csv
import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import numpy as np

DEFAULT_TEMPLATES = ('Image of {}.', )

ClassSpec = Union[str, Sequence[str], Sequence[Sequence[str]]]


@dataclass(frozen=True)
class PromptSet:
    """The prompts of a class list, and which class each prompt belongs to.

    Attributes:
        classes: synonyms of each class; ``classes[c][0]`` is its display name.
        texts: the prompt strings, length P.
        names: the class name inside each prompt, length P.
        class_index: the class of each prompt, length P.
        has_background: class 0 is the background (all its names used,
            its prompts summed), not an object class.
    """
    classes: Tuple[Tuple[str, ...], ...]
    texts: Tuple[str, ...]
    names: Tuple[str, ...]
    class_index: Tuple[int, ...]
    has_background: bool = True

    @property
    def class_names(self) -> List[str]:
        """One display name per class (the first synonym)."""
        return [syn[0] for syn in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_prompts(self) -> int:
        return len(self.texts)

    def entry_names(self, group_background: bool = True) -> List[str]:
        """Names of the entries ``group_prompts`` returns: the classes, or
        (``group_background=False``) each background prompt's name followed
        by classes 1..C-1."""
        if group_background or not self.has_background:
            return self.class_names
        return [n for n, c in zip(self.names, self.class_index)
                if c == 0] + self.class_names[1:]


def split_synonyms(line: str, where: str) -> Tuple[str, ...]:
    """Comma-separated synonyms; a name that holds a comma is quoted
    (``"hair dryer, blow dryer"``), as in CSV."""
    try:
        fields = next(csv.reader([line], skipinitialspace=True, strict=True))
    except csv.Error as e:
        raise ValueError(f'{where}: {line.strip()!r} is not a comma-separated '
                         f'list of names ({e}). Close the quotes around a '
                         'name that holds a comma.') from None
    names = tuple(n.strip() for n in fields)
    if any(not n for n in names):
        raise ValueError(
            f'{where}: empty class name in {line.strip()!r}. Remove the '
            'stray comma or write the missing synonym.')
    return names


def read_class_file(path: str) -> List[Tuple[str, ...]]:
    """Read a class-name file into a list of synonym tuples (background
    first). Errors name the file and line and say how to fix them."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'Class-name file {path!r} does not exist. Point `class_names` at '
            'a text file with one class per line (synonyms comma-separated, '
            'background first), or pass a list of names.')
    with open(path, 'rb') as f:
        raw_lines = f.read().splitlines()
    lines = []
    for lineno, raw in enumerate(raw_lines, start=1):
        try:
            lines.append(raw.decode('utf-8-sig' if lineno == 1 else 'utf-8'))
        except UnicodeDecodeError as e:
            raise ValueError(
                f'{path}, line {lineno}: not valid UTF-8 ({e.reason} at byte '
                f'{e.start}). Re-save the file as UTF-8.') from None
    while lines and not lines[-1].strip():  # trailing blank lines are fine
        lines.pop()
    if not lines:
        raise ValueError(
            f'Class-name file {path!r} is empty. Write one class per line, '
            'background first.')
    classes = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(
                f'{path}, line {lineno}: blank line. Every line is one class '
                '(its position is its label index); remove the blank line.')
        classes.append(split_synonyms(line, f'{path}, line {lineno}'))
    return _check_classes(classes, source=path, unit='line')


def _check_classes(classes, source: str, unit: str):
    if len(classes) < 2:
        raise ValueError(
            f'{source}: found {len(classes)} class(es); need at least two '
            '(a background class and an object class, or two object classes '
            'without background).')
    # A name may appear once. Within one class, spellings that differ only
    # in case ("tv", "TV") are allowed: cased tokenizers read them as
    # different words, and the reference's VOC list has both. Across
    # classes they are refused (the name would be ambiguous).
    seen = {}
    for i, syns in enumerate(classes):
        where = f'{unit} {i + 1}' if unit == 'line' else f'{unit} {i}'
        for j, name in enumerate(syns):
            key = name.lower()
            if key in seen and (seen[key][0] != i or name in syns[:j]):
                raise ValueError(
                    f'{source}: duplicate class name {name!r} ({seen[key][1]} '
                    f'and {where}). Each name may appear once; merge the two '
                    'classes or rename one.')
            seen.setdefault(key, (i, where))
    return classes


def parse_class_names(spec: ClassSpec) -> List[Tuple[str, ...]]:
    """Class synonyms from a file path, or from a list whose items are a name,
    a comma-separated string of synonyms, or a list of synonyms."""
    if isinstance(spec, (str, os.PathLike)):
        return read_class_file(spec)
    if spec is None or len(spec) == 0:
        raise ValueError(
            '`class_names` is empty. Give a class-name file or a list of '
            'names with the background class first.')
    classes = []
    for i, item in enumerate(spec):
        where = f'class_names[{i}]'
        if isinstance(item, str):
            if not item.strip():
                raise ValueError(
                    f'{where} is blank. Give every class a name.')
            classes.append(split_synonyms(item, where))
        else:
            syns = tuple(str(n).strip() for n in item)
            if not syns or any(not n for n in syns):
                raise ValueError(
                    f'{where} = {list(item)!r} has an empty name. Give every '
                    'class at least one non-empty name.')
            classes.append(syns)
    return _check_classes(classes, source='class_names', unit='class')


def build_prompts(spec: ClassSpec,
                  templates: Sequence[str] = DEFAULT_TEMPLATES,
                  multi_prompt: bool = False,
                  has_background: bool = True) -> PromptSet:
    """Build the prompt set of a class list (see the module docstring)."""
    if isinstance(templates, str):
        templates = [templates]
    if not templates:
        raise ValueError('`prompt_templates` is empty; the default is '
                         "['Image of {}.'].")
    for t in templates:
        if t.count('{}') != 1:
            raise ValueError(
                f'Prompt template {t!r} must contain exactly one "{{}}" where '
                'the class name goes, e.g. "Image of {}."')
    classes = parse_class_names(spec)
    texts, names, index = [], [], []
    for c, syns in enumerate(classes):
        used = syns if ((c == 0 and has_background) or multi_prompt) \
            else syns[:1]
        for name in used:
            for t in templates:
                texts.append(t.format(name))
                names.append(name)
                index.append(c)
    return PromptSet(
        classes=tuple(tuple(s) for s in classes),
        texts=tuple(texts),
        names=tuple(names),
        class_index=tuple(index),
        has_background=bool(has_background))


# background black, then well-separated hues; random ones past the list
_COLOURS = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25],
            [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
            [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128],
            [170, 110, 40], [128, 0, 0], [128, 128, 0], [0, 0, 128]]


def class_palette(num_classes: int) -> List[List[int]]:
    """One colour per class, background black, the first 16 distinct."""
    rng = np.random.default_rng(2)
    extra = rng.integers(40, 256, (max(0, num_classes - len(_COLOURS)), 3))
    return (_COLOURS + extra.tolist())[:num_classes]
