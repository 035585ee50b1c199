"""COCO-Object label maps from the COCO 2017 instance annotations, for
``COCOObjectDataset`` (what ``tools/convert_coco_object.py`` runs; mmseg
keeps its dataset converters apart from its dataset classes too).

Writes OUT/annotations/{split}/{image stem}_instanceTrainIds.png: 0
background, 1..80 the thing classes in COCO category-id order, 255 ignored.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..datasets.coco_object import (IGNORE_INDEX, SEG_MAP_SUFFIX,
                                    COCOObjectDataset)

def decode_rle(rle: dict) -> np.ndarray:
    """A COCO run-length encoding (``{'size': [h, w], 'counts': ...}``,
    counts as a list or as COCO's compressed string) to a [h, w] uint8
    mask. Runs alternate 0s and 1s, starting with 0s, in column-major
    order."""
    h, w = (int(v) for v in rle['size'])
    counts = rle['counts']
    if isinstance(counts, (bytes, str)):
        counts = _counts_from_string(
            counts.decode('ascii') if isinstance(counts, bytes) else counts)
    counts = [int(c) for c in counts]
    if sum(counts) != h * w or any(c < 0 for c in counts):
        raise ValueError(f'RLE counts sum to {sum(counts)}, not h*w = {h * w}'
                         ' (or hold a negative run): corrupt segmentation.')
    values = np.zeros(len(counts), np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T.copy()  # column-major -> [h, w]


def _counts_from_string(s: str) -> List[int]:
    """Decode COCO's compressed counts: 5 bits per character (offset 48),
    0x20 continues a number, 0x10 in the last chunk is the sign, and every
    count after the second is stored relative to the count two before."""
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rasterize_polygons(polygons: Sequence[Sequence[float]], h: int,
                       w: int) -> np.ndarray:
    """Polygons ``[[x0, y0, x1, y1, ...], ...]`` to a [h, w] uint8 mask:
    a pixel is inside when its centre is."""
    from matplotlib.path import Path
    mask = np.zeros((h, w), np.uint8)
    for poly in polygons:
        pts = np.asarray(poly, np.float64).reshape(-1, 2)
        if len(pts) < 3:
            continue
        x0 = max(int(np.floor(pts[:, 0].min())), 0)
        x1 = min(int(np.ceil(pts[:, 0].max())), w)
        y0 = max(int(np.floor(pts[:, 1].min())), 0)
        y1 = min(int(np.ceil(pts[:, 1].max())), h)
        if x1 <= x0 or y1 <= y0:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1]
        centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
        inside = Path(pts).contains_points(centres).reshape(ys.shape)
        mask[y0:y1, x0:x1] |= inside.astype(np.uint8)
    return mask


def annotation_mask(segmentation, h: int, w: int) -> np.ndarray:
    """One COCO annotation's ``segmentation`` (polygons, RLE or compressed
    RLE) as a [h, w] uint8 mask."""
    if isinstance(segmentation, list):
        return rasterize_polygons(segmentation, h, w)
    if isinstance(segmentation, dict):
        if [int(v) for v in segmentation['size']] != [h, w]:
            raise ValueError(f'RLE size {segmentation["size"]} differs from '
                             f'the image size {[h, w]}.')
        return decode_rle(segmentation)
    raise ValueError(f'Unknown segmentation format {type(segmentation)}.')


def category_labels(categories: Sequence[dict]) -> Dict[int, int]:
    """COCO category id -> label 1..80 (ascending id order), checked against
    the dataset's class names."""
    cats = sorted(categories, key=lambda c: c['id'])
    names = COCOObjectDataset.METAINFO['classes'][1:]
    got = [c['name'] for c in cats]
    if len(cats) != len(names) or any(
            a.replace(' ', '') != b.replace(' ', '')
            for a, b in zip(got, names)):
        raise ValueError(
            f'The annotation file has {len(cats)} categories {got[:5]}...; '
            f'COCO-Object needs the 80 COCO thing categories {list(names[:5])}'
            '... Pass the instances_*.json of COCO 2017.')
    return {c['id']: i + 1 for i, c in enumerate(cats)}


def label_map(image: dict, annotations: Sequence[dict],
              labels: Dict[int, int], crowd: str = 'label') -> np.ndarray:
    """The [h, w] uint8 COCO-Object label map of one image: 0 background,
    each instance's class label, larger instances painted first so smaller
    ones stay visible; crowd regions get their class ('label', as in the
    COCO-Stuff-derived version) or 255 ('ignore')."""
    if crowd not in ('label', 'ignore'):
        raise ValueError(f"crowd={crowd!r}; use 'label' or 'ignore'.")
    h, w = int(image['height']), int(image['width'])
    out = np.zeros((h, w), np.uint8)
    order = sorted(annotations, key=lambda a: -float(a.get('area', 0)))
    crowds: List[Tuple[np.ndarray, int]] = []
    for ann in order:
        mask = annotation_mask(ann['segmentation'], h, w).astype(bool)
        value = labels[ann['category_id']]
        if ann.get('iscrowd', 0):
            crowds.append((mask, IGNORE_INDEX if crowd == 'ignore' else value))
            continue
        out[mask] = value
    for mask, value in crowds:  # crowd regions only where no instance is
        out[mask & (out == 0)] = value
    return out


def convert_split(coco_root, split, out, crowd='label', overwrite=False,
                  progress=True):
    """Write COCO-Object label maps of one COCO split from its instance
    annotations (``tools/convert_coco_object.py``); returns the number of
    label maps written. The split goes to a temporary folder renamed when
    complete, so an interrupted run leaves nothing half-written."""
    import json
    import os
    from collections import defaultdict

    import cv2

    from ..utils.io import atomic_dir

    ann_file = os.path.join(coco_root, 'annotations', f'instances_{split}.json')
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(
            f'{ann_file} not found: download the COCO 2017 annotations '
            '(annotations_trainval2017.zip) and unpack them under '
            f'{os.path.join(coco_root, "annotations")}.')
    dest = os.path.join(out, 'annotations', split)
    if os.path.isdir(dest) and os.listdir(dest) and not overwrite:
        raise FileExistsError(f'{dest} exists and is not empty; pass '
                              '--overwrite to replace it.')
    with open(ann_file) as f:
        coco = json.load(f)
    labels = category_labels(coco['categories'])
    per_image = defaultdict(list)
    for ann in coco['annotations']:
        if ann['category_id'] not in labels:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")} has '
                             f'unknown category_id {ann["category_id"]}.')
        per_image[ann['image_id']].append(ann)
    with atomic_dir(dest, hint='Choose a writable --out.') as tmp:
        images = coco['images']
        for i, image in enumerate(images):
            lab = label_map(image, per_image.get(image['id'], []), labels,
                            crowd)
            stem = os.path.splitext(image['file_name'])[0]
            if not cv2.imwrite(os.path.join(tmp, stem + SEG_MAP_SUFFIX), lab):
                raise OSError(f'could not write the label map of {stem}')
            if progress and (i + 1) % 500 == 0:
                print(f'{split}: {i + 1}/{len(images)}', flush=True)
    img_dir = os.path.join(out, 'images', split)
    if not os.path.isdir(img_dir):
        print(f'note: {img_dir} does not exist; COCOObjectDataset reads the '
              f'images from there (move or link COCO\'s {split}/ folder).')
    return len(images)
