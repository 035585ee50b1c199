"""The embedded world on disk, in mmseg's layout, with its captions (what
``tools/make_shapes.py`` writes; ``world`` renders, ``captions`` words)."""
import json
import os

import cv2

from ..utils.io import atomic_dir
from .captions import describe, join_words
from .world import (BACKGROUNDS, CLASSES, IMAGE_SIZE, WORLD_VERSION, _rng,
                    render)


def write_dataset(out: str, seed: int, num_train: int, num_val: int,
                  overwrite: bool = False) -> str:
    """Write the world in mmseg layout::

        out/img_dir/{train,val}/NNNNN.png   RGB images
        out/ann_dir/{train,val}/NNNNN.png   label maps (0 = background)
        out/captions/{train,val}.json       captions and object lists
        out/meta.json                       seed, counts, classes

    Everything is written to a temporary folder beside ``out`` and renamed
    at the end, so a failure leaves nothing half-written.
    """
    for name, n in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f'{name} must be a positive integer, got {n!r}.')
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        if not overwrite:
            raise FileExistsError(
                f'{out} exists and is not empty. Pass --overwrite to replace '
                'it, or choose another --out.')
    with atomic_dir(out, hint='Choose a writable --out.') as tmp:
        for split, n in (('train', num_train), ('val', num_val)):
            img_dir = os.path.join(tmp, 'img_dir', split)
            ann_dir = os.path.join(tmp, 'ann_dir', split)
            os.makedirs(img_dir)
            os.makedirs(ann_dir)
            records = []
            for i in range(n):
                img, label, objects, backgrounds = render(seed, split, i)
                name = f'{i:05d}.png'
                cv2.imwrite(os.path.join(img_dir, name), img[:, :, ::-1])
                cv2.imwrite(os.path.join(ann_dir, name), label)
                records.append(dict(
                    image=f'img_dir/{split}/{name}',
                    caption=describe(objects, _rng(seed, split, i + 10**7)),
                    objects=[o.to_json() for o in objects],
                    background=join_words(list(backgrounds)),
                    backgrounds=list(backgrounds)))
            os.makedirs(os.path.join(tmp, 'captions'), exist_ok=True)
            with open(os.path.join(tmp, 'captions', f'{split}.json'), 'w') as f:
                json.dump(records, f, indent=1)
        with open(os.path.join(tmp, 'meta.json'), 'w') as f:
            json.dump(dict(seed=seed, num_train=num_train, num_val=num_val,
                           classes=list(CLASSES), backgrounds=list(BACKGROUNDS),
                           image_size=IMAGE_SIZE, version=WORLD_VERSION), f,
                      indent=1)
    return out
