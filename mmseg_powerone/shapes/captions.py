"""The one caption grammar of the embedded world: the captions the dataset
writes beside its images, and the true and false captions the tiny VLMs
are pretrained on.

A mention is (shape, colour, size, background kind under it), any but the
shape None; a caption is (mentions, template, background kinds or None).
"""
from typing import List

import numpy as np

from .world import BACKGROUNDS, CLASSES, COLOURS, ShapeObject

SHAPES = CLASSES[1:]
TEMPLATES = ('image of {}.', '{}.', 'there is {}.')
# Share of captions that say which background kind lies under each object.
LOCAL_BACKGROUND = 0.35


def join_words(words: List[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else \
        ', '.join(words[:-1]) + ' and ' + words[-1]


def describe(objects: List[ShapeObject], rng: np.random.Generator) -> str:
    """The dataset's caption of an image: every object with its colour (and
    sometimes size) and the background kind it lies on."""
    mentions = []
    for o in rng.permutation(len(objects)):
        o = objects[int(o)]
        size = o.size if rng.random() < 0.3 else None
        mentions.append((o.shape, o.colour, size, o.on))
    return caption_text((mentions, '{}.', None))


def mention_text(m):
    """A mention is (shape, colour, size, background kind under it); any
    but the shape may be None."""
    shape, colour, size, on = m
    text = 'a ' + ' '.join(w for w in (size, colour, shape) if w)
    return f'{text} on {on}' if on else text


def caption_text(caption):
    """A caption is (mentions, template, background kinds or None)."""
    mentions, template, backgrounds = caption
    text = template.format(join_words([mention_text(m) for m in mentions]))
    if backgrounds:  # "with": "on" says what lies under one object
        return text[:-1] + f' with {join_words(list(backgrounds))}.'
    return text


def is_true(caption, scene):
    """A caption is true of an image if every mention matches an object and
    every background kind it names (if any) is in the image."""
    mentions, _, backgrounds = caption
    objects, scene_backgrounds = scene
    if backgrounds and not set(backgrounds) <= set(scene_backgrounds):
        return False
    by_shape = {o['shape']: o for o in objects}
    for shape, colour, size, on in mentions:
        o = by_shape.get(shape)
        if o is None or (colour and o['colour'] != colour) or \
                (size and o['size'] != size) or (on and o['on'] != on):
            return False
    return True


def positive(scene, rng):
    """A true caption: a random non-empty subset of the objects; then either
    the kind of background under some of them ("a red star on grass"), or
    half of the time a non-empty subset of the image's background kinds."""
    objects, backgrounds = scene
    if rng.random() < 0.25:  # the evaluation prompt form
        o = objects[rng.integers(len(objects))]
        return [(o['shape'], None, None, None)], TEMPLATES[0], None
    k = int(rng.integers(1, len(objects) + 1))
    chosen = rng.choice(len(objects), size=k, replace=False)
    local = rng.random() < LOCAL_BACKGROUND
    mentions = []
    for i in chosen:
        o = objects[int(i)]
        mentions.append((o['shape'],
                         o['colour'] if rng.random() < 0.5 else None,
                         o['size'] if rng.random() < 0.2 else None,
                         o['on'] if local and rng.random() < 0.8 else None))
    if local:
        return mentions, TEMPLATES[int(rng.integers(len(TEMPLATES)))], None
    named = None
    if rng.random() < 0.5:
        k = int(rng.integers(1, len(backgrounds) + 1))
        named = tuple(str(b) for b in rng.permutation(backgrounds)[:k])
    return mentions, TEMPLATES[int(rng.integers(len(TEMPLATES)))], named


def word_swap_negative(caption, scene, rng):
    """One word of a true caption swapped so that it becomes false: the kind
    of background under an object (half of the captions that name one; the
    image's other kind where it has two, the hardest case), a named
    background kind swapped for one the image lacks, or mostly a shape
    swapped for an absent one, sometimes a wrong colour."""
    mentions, template, backgrounds = caption
    objects, scene_backgrounds = scene
    absent_kinds = [b for b in BACKGROUNDS if b not in scene_backgrounds]
    located = [i for i, m in enumerate(mentions) if m[3]]
    if located and rng.random() < 0.5:  # the wrong kind under an object
        i = located[int(rng.integers(len(located)))]
        shape, colour, size, on = mentions[i]
        other = [b for b in scene_backgrounds if b != on]
        if not other or rng.random() < 0.3:
            other = absent_kinds
        mentions = list(mentions)
        mentions[i] = (shape, colour, size, str(rng.choice(other)))
        return mentions, template, backgrounds
    if backgrounds and rng.random() < 0.3:
        named = list(backgrounds)
        named[int(rng.integers(len(named)))] = str(rng.choice(absent_kinds))
        return mentions, template, tuple(named)
    present = {o['shape'] for o in objects}
    absent = [s for s in SHAPES if s not in present]
    mentions = list(mentions)
    i = int(rng.integers(len(mentions)))
    shape, colour, size, on = mentions[i]
    if rng.random() < 0.75 or not colour:
        mentions[i] = (str(rng.choice(absent)), colour, size, on)
    else:
        wrong = [c for c in COLOURS if c != colour]
        mentions[i] = (shape, str(rng.choice(wrong)), size, on)
    return mentions, template, backgrounds
