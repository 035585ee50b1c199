"""A pseudo-label folder: what ``tools/pseudo_label.py`` writes and a
student's ``PseudoLabelDataset`` reads.

Layout (mmseg's: one label PNG per image, named after the image's path
under the split's image folder, so a dataset's ``seg_map_path`` can point
here)::

    OUT/pseudo_labels.json     the record: teacher, images, rule, status
    OUT/<image stem>.png       final labels, 255 where the rule ignores
    OUT/.raw/<image stem>.npz  the teacher's arg-max and confidence, kept
                               so an interrupted run resumes and a new rule
                               needs no second teacher pass

The record names the teacher (its config file, model settings and a
fingerprint of every weight it predicts with, its class list) and every
image with a hash of its bytes. A run against a folder of another teacher
or other images stops and says what differs; the folder never mixes two
teachers' labels. Every file is written whole or not at all.
"""
import hashlib
import json
import os.path as osp
from typing import List, Optional

import numpy as np

from ..utils import atomic_write

RECORD = 'pseudo_labels.json'
RAW = '.raw'
VERSION = 1


def record_path(out_dir: str) -> str:
    return osp.join(out_dir, RECORD)


def read_record(out_dir: str) -> Optional[dict]:
    """The folder's record, or None when there is none. A record that is
    not ours (or damaged) is an error: the folder is not ours to write."""
    path = record_path(out_dir)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(
            f'{path} is damaged ({e}). Remove the folder {out_dir} (or give '
            'another --out) and label again.') from e
    if not isinstance(record, dict) or record.get('version') != VERSION:
        raise ValueError(
            f'{path} is not a pseudo-label record of this version '
            f'(version {VERSION}). Remove the folder {out_dir} or give '
            'another --out.')
    return record


def write_record(out_dir: str, record: dict) -> None:
    with atomic_write(record_path(out_dir), 'w') as f:
        json.dump(record, f, indent=1)


def file_sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def label_name(img_path: str, img_dir: str, img_suffix: str) -> str:
    """The label's path under the folder, without extension: the image's
    path under ``img_dir`` less ``img_suffix`` (as mmseg's datasets name
    a label after its image)."""
    rel = osp.relpath(img_path, img_dir)
    if rel.startswith('..'):
        rel = osp.basename(img_path)
    if img_suffix and rel.endswith(img_suffix):
        return rel[:-len(img_suffix)]
    return osp.splitext(rel)[0]


def raw_path(out_dir: str, name: str) -> str:
    return osp.join(out_dir, RAW, name + '.npz')


def label_path(out_dir: str, name: str) -> str:
    return osp.join(out_dir, name + '.png')


def save_raw(out_dir: str, name: str, labels: np.ndarray,
             levels: np.ndarray) -> None:
    """The teacher's arg-max [H, W] and quantised confidence [H, W]."""
    labels = np.asarray(labels)
    dtype = np.uint8 if labels.size == 0 or labels.max() <= 255 else np.uint16
    with atomic_write(raw_path(out_dir, name), 'wb') as f:
        np.savez_compressed(f, labels=labels.astype(dtype),
                            levels=np.asarray(levels, np.uint16))


def load_raw(out_dir: str, name: str):
    with np.load(raw_path(out_dir, name)) as data:
        return data['labels'], data['levels']


def done_names(out_dir: str, names: List[str]) -> List[str]:
    """The names whose raw teacher output is on disk."""
    return [n for n in names if osp.isfile(raw_path(out_dir, n))]


def differences(old: dict, new: dict) -> List[str]:
    """What differs between a folder's record and this run's, as
    sentences: the teacher's config, model settings, weights, classes;
    the images (added, removed, changed)."""
    out = []
    told, tnew = old.get('teacher', {}), new.get('teacher', {})
    if told.get('classes') and tnew.get('classes') and \
            told['classes'] != tnew['classes']:
        out.append(f'the class list: the folder has {told.get("classes")}, '
                   f'this teacher has {tnew.get("classes")}')
    if told.get('model') != tnew.get('model'):
        out.append(f'the teacher model settings (config '
                   f'{told.get("config")} vs {tnew.get("config")})')
    if tnew.get('weights') and told.get('weights') and \
            told['weights'] != tnew['weights']:
        out.append(f'the teacher weights (fingerprint '
                   f'{told["weights"][:12]} vs {tnew["weights"][:12]}; '
                   f'checkpoint {told.get("checkpoint")} vs '
                   f'{tnew.get("checkpoint")})')
    iold, inew = old.get('images', {}), new.get('images', {})
    if iold != inew:
        removed = sorted(set(iold) - set(inew))
        added = sorted(set(inew) - set(iold))
        changed = sorted(n for n in set(iold) & set(inew)
                         if iold[n] != inew[n])
        parts = []
        for what, names in (('changed', changed), ('new', added),
                            ('gone', removed)):
            if names:
                more = f' and {len(names) - 3} more' if len(names) > 3 else ''
                parts.append(f'{len(names)} {what} ({", ".join(names[:3])}'
                             f'{more})')
        out.append('the images: ' + '; '.join(parts))
    return out


def check_same_teacher(out_dir: str, old: dict, new: dict) -> None:
    """Stop when the folder holds another teacher's labels or other
    images; say what differs and the fix."""
    diff = differences(old, new)
    if diff:
        raise ValueError(
            f'{out_dir} holds pseudo-labels of another teacher or other '
            'images, and a folder never mixes two: ' + '; '.join(diff) +
            f'. Give another --out, or remove {out_dir} to label these '
            'images with this teacher from the start.')

