"""The embedded synthetic world: shapes on textured, noisy backgrounds.

Each image holds 1-3 objects of distinct classes on one or two regions of
named background textures (grass, sand, water, snow: the "stuff" that the
background class's synonyms name, as sky/wall/grass do for PASCAL VOC; as
in real scenes, several kinds of stuff share an image, so a background word
must be found in the image rather than read off any patch; captions say
which kind lies under each object: "a red star on grass"). A
class is a shape with its own surface pattern (visible at the scale of one
8-px patch); colour and size are free attributes that captions mention. Everything is a pure function of
(seed, split, index), so a split is reproducible and the train split never
changes the val split.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import cv2
import numpy as np

CLASSES = ('background', 'circle', 'square', 'triangle', 'star', 'cross',
           'ring')
PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25],
           [0, 130, 200], [245, 130, 48], [145, 30, 180]]
COLOURS = {  # name -> RGB
    'red': (220, 30, 30), 'green': (30, 190, 40), 'blue': (40, 70, 230),
    'yellow': (235, 220, 30), 'cyan': (30, 210, 220),
    'magenta': (220, 40, 210), 'orange': (245, 140, 20),
    'white': (240, 240, 240),
}
SIZES = ('small', 'large')
RADII = {'small': (9, 12), 'large': (13, 16)}  # px, inclusive
BACKGROUNDS = ('grass', 'sand', 'water', 'snow')
SPLIT_IDS = {'train': 0, 'val': 1, 'pretrain': 2, 'heldout': 3}
IMAGE_SIZE = 64
# Bump when rendering changes, so stale data folders are noticed.
WORLD_VERSION = 3
# Share of images whose background is two kinds of stuff (else one).
TWO_BACKGROUNDS = 0.65


@dataclass
class ShapeObject:
    shape: str
    colour: str
    size: str
    radius: int
    cx: int
    cy: int
    on: str = ''  # the background kind under the object's centre

    def to_json(self) -> Dict:
        return dict(shape=self.shape, colour=self.colour, size=self.size,
                    on=self.on)


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


def _pattern(shape: str, size: int) -> np.ndarray:
    """Per-class surface pattern in {0, 1}, period 4 px."""
    y, x = np.mgrid[0:size, 0:size]
    if shape == 'square':
        return (y // 2) % 2
    if shape == 'triangle':
        return (x // 2) % 2
    if shape == 'star':
        return (x // 2 + y // 2) % 2
    if shape == 'cross':
        return ((x + y) // 2) % 2
    return np.ones((size, size), np.int64)  # circle, ring: plain


def _shape_mask(shape: str, cx: int, cy: int, r: int, angle: float,
                size: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    if shape == 'circle':
        cv2.circle(m, (cx, cy), r, 1, -1)
    elif shape == 'ring':
        cv2.circle(m, (cx, cy), r, 1, -1)
        cv2.circle(m, (cx, cy), max(2, int(r * 0.55)), 0, -1)
    else:
        if shape == 'square':
            t = np.array([45, 135, 225, 315]) + angle
            pts = [(cx + r * np.cos(np.radians(a)), cy + r * np.sin(np.radians(a)))
                   for a in t]
        elif shape == 'triangle':
            t = np.array([-90, 30, 150]) + angle
            pts = [(cx + r * np.cos(np.radians(a)), cy + r * np.sin(np.radians(a)))
                   for a in t]
        elif shape == 'star':
            pts = []
            for k in range(10):
                rad = r if k % 2 == 0 else r * 0.45
                a = np.radians(-90 + 36 * k + angle)
                pts.append((cx + rad * np.cos(a), cy + rad * np.sin(a)))
        elif shape == 'cross':
            w = max(2, int(r * 0.38))
            cv2.rectangle(m, (cx - r, cy - w), (cx + r, cy + w), 1, -1)
            cv2.rectangle(m, (cx - w, cy - r), (cx + w, cy + r), 1, -1)
            return m.astype(bool)
        else:
            raise ValueError(shape)
        cv2.fillPoly(m, [np.round(np.array(pts)).astype(np.int32)], 1)
    return m.astype(bool)


def _background(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A noisy texture of the given kind (RGB float [H, W, 3])."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    coarse = rng.normal(0, 1, size=(6, 6)).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size),
                        interpolation=cv2.INTER_CUBIC)[..., None]
    noise = rng.normal(0, 1, size=(size, size, 3))
    if kind == 'grass':  # green, vertical blades
        blades = np.repeat(rng.normal(0, 1, size=(1, size)), size, 0)
        img = (np.array([70, 120, 45]) + 25 * blades[..., None]
               + 15 * smooth + 12 * noise)
    elif kind == 'sand':  # beige, fine speckle
        img = np.array([190, 165, 115]) + 12 * smooth + 22 * noise
    elif kind == 'water':  # blue, horizontal waves
        phase = rng.uniform(0, 2 * np.pi)
        waves = np.sin(y / 2.5 + 0.6 * np.sin(x / 7.0) + phase)[..., None]
        img = np.array([35, 75, 150]) + 22 * waves + 12 * smooth + 8 * noise
    elif kind == 'snow':  # pale grey, smooth
        img = np.array([205, 210, 220]) + 18 * smooth + 6 * noise
    else:
        raise ValueError(kind)
    return img * rng.uniform(0.85, 1.1)


def _regions(kinds: List[str], rng: np.random.Generator,
             size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Background: one texture, or two split along a smooth random boundary
    with each kind covering 30-70 % of the image: (RGB float [H, W, 3],
    index into ``kinds`` per pixel [H, W])."""
    img = _background(kinds[0], rng, size)
    region = np.zeros((size, size), np.int64)
    if len(kinds) == 2:
        coarse = rng.normal(0, 1, size=(3, 3)).astype(np.float32)
        field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        second = field > np.quantile(field, rng.uniform(0.3, 0.7))
        img[second] = _background(kinds[1], rng, size)[second]
        region[second] = 1
    return img, region


def render(seed: int, split: str, index: int, size: int = IMAGE_SIZE):
    """One image (RGB uint8 [H, W, 3]), its label map (uint8 [H, W]), its
    objects and its background kinds (a tuple of one or two names)."""
    rng = _rng(seed, split, index)
    n_kinds = 2 if rng.random() < TWO_BACKGROUNDS else 1
    backgrounds = tuple(str(k) for k in rng.choice(BACKGROUNDS, size=n_kinds,
                                                     replace=False))
    img, region = _regions(list(backgrounds), rng, size)
    label = np.zeros((size, size), np.uint8)
    n = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    shapes = rng.choice(np.arange(1, len(CLASSES)), size=n, replace=False)
    objects: List[ShapeObject] = []
    for cls in shapes:
        shape = CLASSES[int(cls)]
        size_name = 'large' if rng.random() < 0.5 else 'small'
        low, high = RADII[size_name]
        r = int(rng.integers(low, high + 1))
        for _ in range(100):  # place without overlap
            cx, cy = (int(v) for v in rng.integers(r, size - r, size=2))
            if all((cx - o.cx) ** 2 + (cy - o.cy) ** 2 > (r + o.radius + 2) ** 2
                   for o in objects):
                break
        else:
            continue
        colour = str(rng.choice(list(COLOURS)))
        mask = _shape_mask(shape, cx, cy, r, float(rng.uniform(0, 360)), size)
        shade = 0.55 + 0.45 * _pattern(shape, size)[..., None]
        rgb = np.array(COLOURS[colour], np.float32) * rng.uniform(0.85, 1.0)
        img[mask] = (rgb * shade[mask]) + rng.normal(0, 8, size=(mask.sum(), 3))
        label[mask] = int(cls)
        objects.append(ShapeObject(shape, colour, size_name, r, cx, cy,
                                   backgrounds[region[cy, cx]]))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, label, objects, backgrounds
