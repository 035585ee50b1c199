"""One labelled support image per class, drawn from any mmseg dataset."""
import copy
import hashlib
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Union

import mmcv
import numpy as np
from mmengine import fileio
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from ..utils import atomic_write, fingerprint_files, read_json_cache

# The reference requires 16 * 32 * 32 pixels of the class in the original
# label map; min_pixels=None scales that to the image: its fraction of a
# 512 x 512 map (the protocol configs set the absolute 16384).
REFERENCE_MIN_FRACTION = 16 * 32 * 32 / (512 * 512)
ON_MISSING = ('error', 'skip')


def default_cache_dir() -> str:
    root = os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache')
    return osp.join(root, 'mmseg_powerone')


@DATASETS.register_module()
class OneShotDataset:
    """Wrap an mmseg dataset and expose only its one-shot support images
    (or, with ``exclude=True``, every image except them).

    Support set: ``shots`` images per foreground class, each holding at least
    ``min_pixels`` of that class and (``only_one_foreground``) no other
    foreground class, drawn deterministically by ``seed``. The label maps are
    scanned once; the per-image class pixel counts are cached in
    ``cache_dir``.

    Protocols: supports from the training split (default; they never appear
    in evaluation), or, as in the reference code, from the evaluation split
    with the evaluation side wrapped by the same settings and
    ``exclude=True`` so the supports are removed from it.

    Args:
        dataset: the dataset or its config (any mmseg ``BaseSegDataset``).
        shots: support images per class.
        seed: which draw.
        min_pixels: least pixels of the class in a support image's label
            map; the reference code requires 16*32*32 = 16384 (its protocol
            configs set that). None: 1/16 of the label map, the same
            fraction of a 512 x 512 map, which suits images of any size.
        only_one_foreground: the support's only foreground class is the one
            it serves.
        background_index: the class that is not a foreground class (None:
            every class is one).
        on_missing: 'error' when a class has too few valid images, or 'skip'
            that class.
        exclude: expose the images that are not supports.
        cache_dir: where the label-map scan is cached; default
            ``$XDG_CACHE_HOME/mmseg_powerone`` (``~/.cache/mmseg_powerone``).
        lazy_init: defer building the index until first use.
    """

    def __init__(self,
                 dataset: Union[dict, object],
                 shots: int = 1,
                 seed: int = 0,
                 min_pixels: Optional[int] = None,
                 only_one_foreground: bool = True,
                 background_index: Optional[int] = 0,
                 on_missing: str = 'error',
                 exclude: bool = False,
                 cache_dir: Optional[str] = None,
                 lazy_init: bool = False):
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
            raise ValueError(f'OneShotDataset: shots={shots!r}; it must be an '
                             'integer >= 1 (support images per class).')
        if min_pixels is not None and (isinstance(min_pixels, bool) or not
                                       isinstance(min_pixels, int)
                                       or min_pixels < 1):
            raise ValueError(f'OneShotDataset: min_pixels={min_pixels!r}; use '
                             'a positive integer or None (1/16 of the image).')
        if on_missing not in ON_MISSING:
            raise ValueError(f'OneShotDataset: on_missing={on_missing!r}; use '
                             f'one of {ON_MISSING}.')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) \
            else dataset
        self.shots = shots
        self.seed = seed
        self.min_pixels = min_pixels
        self.only_one_foreground = only_one_foreground
        self.background_index = background_index
        self.on_missing = on_missing
        self.exclude = exclude
        self.cache_dir = cache_dir or default_cache_dir()
        self.support_indices: List[int] = []
        self.support_classes: List[int] = []
        self._indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    # ------------------------------------------------------------ dataset API
    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        counts = self._class_pixel_counts()
        self.support_indices, self.support_classes = self._draw(counts)
        names = self.class_names
        drawn = ', '.join(
            f'{names[c]}: {self.dataset.get_data_info(i).get("img_path", i)}'
            for i, c in zip(self.support_indices, self.support_classes))
        print_log(f'OneShotDataset (seed {self.seed}'
                  + (', evaluation side: these are left out' if self.exclude
                     else '') + f'): supports {drawn}', logger='current')
        if self.exclude:
            chosen = set(self.support_indices)
            self._indices = [i for i in range(len(self.dataset))
                             if i not in chosen]
            if not self._indices:
                raise ValueError(
                    f'OneShotDataset(exclude=True): all {len(self.dataset)} '
                    'images are supports, nothing is left to evaluate on. Use '
                    'a larger evaluation split or draw supports from the '
                    'training split.')
        else:
            self._indices = list(self.support_indices)
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self._indices)

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        return self.dataset[self._indices[idx]]

    def get_data_info(self, idx: int) -> dict:
        self.full_init()
        return self.dataset.get_data_info(self._indices[idx])

    # ------------------------------------------------------------ selection
    @property
    def class_names(self) -> List[str]:
        return list(self.dataset.metainfo['classes'])

    def _threshold(self, num_pixels: int) -> float:
        if self.min_pixels is not None:
            return self.min_pixels
        return REFERENCE_MIN_FRACTION * num_pixels

    def _draw(self, counts: List[Dict]):
        """Supports per foreground class: ([dataset index], [class])."""
        names = self.class_names
        foreground = [c for c in range(len(names)) if c != self.background_index]
        rng = np.random.default_rng(self.seed)
        indices, classes, missing, used = [], [], [], set()
        for c in foreground:
            valid = []
            for i, img in enumerate(counts):
                present = img['classes']
                if present.get(c, 0) < self._threshold(img['pixels']) \
                        or i in used:
                    continue
                if self.only_one_foreground and any(
                        k != c for k in present if k in foreground):
                    continue
                valid.append(i)
            if len(valid) < self.shots:
                missing.append(f'{names[c]!r} ({len(valid)} valid)')
                continue
            for j in rng.choice(len(valid), self.shots, replace=False):
                indices.append(valid[int(j)])
                classes.append(c)
                used.add(valid[int(j)])
        if missing and self.on_missing == 'error':
            need = (f'{self.min_pixels} pixels' if self.min_pixels else
                    '1/16 of the image (min_pixels=None)')
            raise ValueError(
                f'OneShotDataset: too few support images for classes '
                f'{", ".join(missing)} of {names}: each needs {self.shots} '
                f'image(s) with at least {need} of the class'
                + (' and no other foreground class' if self.only_one_foreground
                   else '') + '. Relax the constraint (a smaller min_pixels, '
                'only_one_foreground=False), use a larger split, or set '
                "on_missing='skip' to leave those classes out.")
        if not indices:
            raise ValueError('OneShotDataset: no class has a valid support '
                             'image; see the constraints in its docstring.')
        return indices, classes

    # ------------------------------------------------------------ label scan
    def _seg_infos(self) -> List[dict]:
        infos = []
        for i in range(len(self.dataset)):
            info = self.dataset.get_data_info(i)
            path = info.get('seg_map_path')
            if not path or not fileio.exists(path):
                raise ValueError(
                    f'OneShotDataset needs label maps, but image '
                    f'{info.get("img_path", i)!r} has '
                    + (f'no label file {path!r}' if path else
                       'no seg_map_path') + '. Wrap a dataset with '
                    'annotations (set data_prefix.seg_map_path).')
            infos.append(info)
        return infos

    def _class_pixel_counts(self) -> List[Dict]:
        """Per image: its pixel count and {class: pixels} after the dataset's
        own label mapping (reduce_zero_label, label_map)."""
        infos = self._seg_infos()
        num_classes = len(self.class_names)
        h = hashlib.sha256()
        for info in infos:
            h.update(json.dumps([
                info['seg_map_path'], bool(info.get('reduce_zero_label')),
                sorted((info.get('label_map') or {}).items())]).encode())
        # what the label maps hold (regenerated maps under the same names
        # must be scanned again)
        h.update(fingerprint_files(i['seg_map_path'] for i in infos).encode())
        h.update(str(num_classes).encode())
        cache = osp.join(self.cache_dir, f'oneshot-index-{h.hexdigest()[:20]}.json')
        cached = read_json_cache(cache, 'OneShotDataset')
        if cached is not None:
            try:
                counts = [dict(pixels=int(e['pixels']),
                               classes={int(k): int(v)
                                        for k, v in e['classes'].items()})
                          for e in cached]
                if len(counts) == len(infos):
                    print_log(f'OneShotDataset: reusing the class pixel counts '
                              f'of {len(counts)} label maps cached in {cache} '
                              '(same files, by content).', logger='current')
                    return counts
            except (KeyError, TypeError, ValueError, AttributeError):
                pass
            warnings.warn(f'OneShotDataset: the cache file {cache} does not '
                          'hold the label scan it should; scanning again and '
                          'replacing it.')
        counts = [_count_classes(info, num_classes) for info in infos]
        try:
            with atomic_write(cache, 'w') as f:
                json.dump(counts, f)
        except OSError:  # a read-only cache only costs a rescan next time
            pass
        return counts


def _count_classes(info: dict, num_classes: int) -> Dict:
    """Pixels of each class in one label map, read as ``LoadAnnotations``
    reads it."""
    seg = mmcv.imfrombytes(fileio.get(info['seg_map_path']), flag='unchanged',
                           backend='pillow').squeeze().astype(np.uint8)
    if info.get('reduce_zero_label'):
        seg[seg == 0] = 255
        seg = seg - 1
        seg[seg == 254] = 255
    if info.get('label_map'):
        mapped = seg.copy()
        for old, new in info['label_map'].items():
            mapped[seg == old] = new
        seg = mapped
    hist = np.bincount(seg.ravel(), minlength=256)
    stray = np.flatnonzero(hist[num_classes:255]) + num_classes
    if stray.size:
        raise ValueError(
            f'OneShotDataset: label map {info["seg_map_path"]} holds values '
            f'{stray[:10].tolist()} outside the {num_classes} classes '
            f'(0..{num_classes - 1}) and the ignore index 255: the dataset '
            "does not match its class list. Fix the dataset's classes "
            '(metainfo) or map those values to 255 (label_map / '
            'reduce_zero_label).')
    return dict(pixels=int(seg.size),
                classes={c: int(hist[c]) for c in range(num_classes) if hist[c]})
