"""Writing label maps and naming per-image outputs without losing anything:
class indices above 255 and images that share a file stem."""
import os.path as osp
from typing import Optional, Tuple

import cv2
import numpy as np

from .io import atomic_write


def label_dtype(num_classes: Optional[int], labels: np.ndarray):
    """uint8 when every class index fits in it, else uint16."""
    top = int(labels.max()) if labels.size else 0
    if num_classes is not None:
        top = max(top, num_classes - 1)
    if top > 65535 or (labels.size and int(labels.min()) < 0):
        raise ValueError(f'Label values {int(labels.min())}..{top} do not fit '
                         'a PNG label map (0..65535).')
    return np.uint8 if top <= 255 else np.uint16


def save_label_png(path: str, labels, num_classes: Optional[int] = None) -> None:
    """A label map [H, W] of class indices as a PNG: 8-bit when the class
    count allows, 16-bit otherwise (an 8-bit map would store class 267 as
    11). Written atomically."""
    labels = np.asarray(labels)
    ok, data = cv2.imencode('.png', labels.astype(label_dtype(num_classes,
                                                              labels)))
    if not ok:
        raise ValueError(f'Could not encode the label map for {path}.')
    with atomic_write(path, 'wb') as f:
        f.write(data.tobytes())


def resize_labels(labels, size: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map [h, w] to ``size`` (H, W),
    any integer type kept (cv2 on uint8 would wrap classes above 255)."""
    labels = np.asarray(labels)
    h, w = labels.shape[:2]
    H, W = size
    rows = np.minimum((np.arange(H) * (h / H)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(W) * (w / W)).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


class UniqueNames:
    """Output names for a stream of input paths: each input's file stem,
    except that an input whose stem an earlier, different input already
    took gets the stem and its extension ("a.jpg" -> "a", then "a.png" ->
    "a_png"; a counter after that), so no output overwrites another.
    :meth:`name` returns the name and, for a renamed input, the path it
    collided with (to tell the user)."""

    def __init__(self):
        self.taken = {}  # name -> path

    def name(self, path: str) -> Tuple[str, Optional[str]]:
        stem = osp.splitext(osp.basename(path))[0]
        if self.taken.get(stem, path) == path:
            self.taken[stem] = path
            return stem, None
        ext = osp.splitext(path)[1].lstrip('.').lower() or 'img'
        name, k = f'{stem}_{ext}', 1
        while self.taken.get(name, path) != path:
            name, k = f'{stem}_{ext}_{k}', k + 1
        self.taken[name] = path
        return name, self.taken[stem]


# Lossy formats change pixel values at every edge: a 0/1 mask comes back
# with 2s and 3s, i.e. classes that are not there.
LOSSY_MASK = {b'\xff\xd8\xff': 'JPEG'}


def lossy_format(data: bytes):
    """'JPEG' or 'lossy WebP' when the file's bytes are in a lossy format,
    else None."""
    for magic, fmt in LOSSY_MASK.items():
        if data.startswith(magic):
            return fmt
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP' and data[12:16] == b'VP8 ':
        return 'lossy WebP'
    return None
