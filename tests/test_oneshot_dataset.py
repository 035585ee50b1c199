"""OneShotDataset: deterministic support draws that respect their
constraints, the excluded evaluation view, and clear errors."""
import json

import cv2
import numpy as np
import pytest

from mmseg_powerone.datasets import OneShotDataset

CLASSES = ('background', 'cat', 'dog', 'bird')


def make_split(root, layout):
    """Write 32x32 images whose label maps hold ``{class: pixels}`` blocks."""
    (root / 'img').mkdir(parents=True)
    (root / 'ann').mkdir()
    for i, blocks in enumerate(layout):
        label = np.zeros((32, 32), np.uint8)
        row = 0
        for c, pixels in blocks.items():
            rows = pixels // 32
            label[row:row + rows] = c
            row += rows
        cv2.imwrite(str(root / 'img' / f'{i:03d}.png'),
                    np.full((32, 32, 3), 40 * i % 255, np.uint8))
        cv2.imwrite(str(root / 'ann' / f'{i:03d}.png'), label)
    return dict(type='BaseSegDataset', data_root=str(root),
                data_prefix=dict(img_path='img', seg_map_path='ann'),
                img_suffix='.png', seg_map_suffix='.png',
                metainfo=dict(classes=CLASSES), pipeline=[])


# 32x32 = 1024 pixels; the default threshold is 1/16 of it = 64 pixels.
LAYOUT = [
    {1: 256},            # 0 cat
    {1: 32},             # 1 cat, too small by default
    {1: 256, 2: 256},    # 2 cat and dog
    {2: 512},            # 3 dog
    {2: 128},            # 4 dog
    {3: 320},            # 5 bird
    {1: 96},             # 6 cat
    {3: 64},             # 7 bird, exactly the threshold
]


@pytest.fixture
def split(tmp_path):
    return make_split(tmp_path / 'data', LAYOUT)


def build(split, tmp_path, **kwargs):
    return OneShotDataset(dataset=split, cache_dir=str(tmp_path / 'cache'),
                          **kwargs)


def test_supports_respect_the_constraints_and_cover_each_class(split, tmp_path):
    for seed in range(6):
        ds = build(split, tmp_path, seed=seed)
        assert ds.support_classes == [1, 2, 3]
        by_class = dict(zip(ds.support_classes, ds.support_indices))
        assert by_class[1] in (0, 6)       # not 1 (small) nor 2 (two classes)
        assert by_class[2] in (3, 4)
        assert by_class[3] in (5, 7)
        assert len(ds) == 3
        assert ds.get_data_info(0)['img_path'].endswith(
            f'{ds.support_indices[0]:03d}.png')


@pytest.mark.slow
def test_draws_are_deterministic_and_vary_with_the_seed(split, tmp_path):
    draws = {tuple(build(split, tmp_path, seed=s).support_indices)
             for s in range(8)}
    assert len(draws) > 1
    for s in range(3):
        assert build(split, tmp_path, seed=s).support_indices == \
            build(split, tmp_path / 'other', seed=s).support_indices


def test_constraints_can_be_relaxed(split, tmp_path):
    ds = build(split, tmp_path, min_pixels=16, only_one_foreground=False,
               shots=2, seed=1)
    cats = [i for i, c in zip(ds.support_indices, ds.support_classes) if c == 1]
    assert len(cats) == 2 and set(cats) <= {0, 1, 2, 6}
    assert len(set(ds.support_indices)) == len(ds.support_indices)


def test_exclude_gives_every_other_image(split, tmp_path):
    supports = build(split, tmp_path, seed=3).support_indices
    rest = build(split, tmp_path, seed=3, exclude=True)
    assert len(rest) == len(LAYOUT) - 3
    paths = {rest.get_data_info(i)['img_path'] for i in range(len(rest))}
    assert not any(p.endswith(f'{s:03d}.png') for p in paths for s in supports)
    assert rest.metainfo['classes'] == CLASSES


def test_scan_is_cached(split, tmp_path):
    build(split, tmp_path)
    cached = list((tmp_path / 'cache').glob('oneshot-index-*.json'))
    assert len(cached) == 1
    # a changed label map is a different dataset: a new index is made
    label = np.zeros((32, 32), np.uint8)
    cv2.imwrite(str(tmp_path / 'data' / 'ann' / '003.png'), label)
    ds = build(split, tmp_path, on_missing='skip', seed=0)
    assert len(list((tmp_path / 'cache').glob('oneshot-index-*.json'))) == 2
    assert dict(zip(ds.support_classes, ds.support_indices))[2] == 4


def test_scan_cache_follows_label_content(split, tmp_path):
    """A label map rewritten under its name with its old modification time
    is scanned again; a damaged cache file is reported and replaced."""
    import os
    import warnings
    build(split, tmp_path)
    path = tmp_path / 'data' / 'ann' / '003.png'
    st = os.stat(path)
    cv2.imwrite(str(path), np.zeros((32, 32), np.uint8))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    ds = build(split, tmp_path, on_missing='skip', seed=0)
    assert dict(zip(ds.support_classes, ds.support_indices))[2] == 4
    cached = sorted((tmp_path / 'cache').glob('oneshot-index-*.json'),
                    key=os.path.getmtime)
    assert len(cached) == 2
    cached[-1].write_text('[{"pixels": 10')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        again = build(split, tmp_path, on_missing='skip', seed=0)
    assert any(str(cached[-1]) in str(w.message) for w in caught)
    assert again.support_indices == ds.support_indices
    assert json.loads(cached[-1].read_text())[0]['pixels'] > 0


@pytest.mark.parametrize('shots', [0, -1, 1.5, True])
def test_bad_shots_are_refused(split, tmp_path, shots):
    with pytest.raises(ValueError, match='shots'):
        build(split, tmp_path, shots=shots)


def test_a_class_without_support_names_it_and_the_fix(split, tmp_path):
    with pytest.raises(ValueError) as e:
        build(split, tmp_path, min_pixels=400)
    msg = str(e.value)
    assert "'cat' (0 valid)" in msg and "'bird' (0 valid)" in msg
    assert "'dog' (" not in msg
    assert 'min_pixels' in msg and "on_missing='skip'" in msg
    ds = build(split, tmp_path, min_pixels=400, on_missing='skip')
    assert ds.support_classes == [2] and ds.support_indices == [3]


def test_a_class_that_never_appears_is_an_error(tmp_path):
    split = make_split(tmp_path / 'data', [{1: 256}, {2: 256}])
    with pytest.raises(ValueError, match="'bird' \\(0 valid\\)"):
        build(split, tmp_path)


def test_empty_evaluation_side_after_exclusion_is_an_error(tmp_path):
    split = make_split(tmp_path / 'data', [{1: 256}, {2: 256}, {3: 256}])
    with pytest.raises(ValueError, match='nothing is left to evaluate'):
        build(split, tmp_path, exclude=True)


def test_a_dataset_without_labels_is_an_error(split, tmp_path):
    split['data_prefix'] = dict(img_path='img', seg_map_path='missing')
    with pytest.raises(ValueError, match='needs label maps'):
        build(split, tmp_path)
