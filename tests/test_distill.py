"""Pseudo-labels from a teacher and the student's dataset: the confidence
rule, the folder's record (resume, another teacher, changed images), the
labels never read, and the checks a student's dataset makes."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from mmseg_powerone.distill import ConfidenceRule, finalize, pseudo_label
from mmseg_powerone.distill import folder
from mmseg_powerone.distill.confidence import (LEVELS, add_class_histograms,
                                               quantize)
from mmseg_powerone.distill.pseudo_label import teacher_probabilities
from mmseg_powerone.shapes.dataset import write_dataset
from mmseg_powerone.utils.resources import config_path

from helpers import REPO, run

TEACHER = config_path('powerone/powerone_blip-tiny_zeroshot_shapes.py')
STUDENT = config_path('distill/distill_segformer-mit-tiny_blip-tiny_shapes.py')


# ---------------------------------------------------------------- the rule
def test_class_quantile_keeps_each_class_share():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (40, 50))
    conf = rng.random((40, 50))
    conf[labels == 2] *= 0.1  # a class the teacher is unsure of everywhere
    levels = quantize(conf)
    hist = np.zeros((4, LEVELS), np.int64)  # class 3: no pixel
    add_class_histograms(hist, labels, levels)
    rule = ConfidenceRule(class_quantile=0.5)
    thresholds = rule.thresholds(hist)
    out = rule.apply(labels, levels, thresholds)
    for c in range(3):
        mask = labels == c
        kept = (out[mask] == c).mean()
        assert 0.48 <= kept <= 0.52, (c, kept)
        # the kept pixels are the class's most confident ones
        assert levels[mask][out[mask] == c].min() >= \
            levels[mask][out[mask] == 255].max()
    assert thresholds[3] == 0
    # an absolute floor alone removes the unsure class entirely
    floor = ConfidenceRule(class_quantile=0, min_confidence=0.2)
    out = floor.apply(labels, levels, floor.thresholds(hist))
    assert not (out == 2).any() and (out == 0).any()


def test_quantile_zero_keeps_every_pixel():
    labels = np.array([[0, 1], [1, 1]])
    levels = quantize(np.array([[0.1, 0.2], [0.3, 0.9]]))
    hist = np.zeros((2, LEVELS), np.int64)
    add_class_histograms(hist, labels, levels)
    rule = ConfidenceRule(class_quantile=0)
    assert (rule.apply(labels, levels, rule.thresholds(hist)) == labels).all()


@pytest.mark.parametrize('kwargs, word', [
    (dict(class_quantile=1.0), 'class_quantile'),
    (dict(class_quantile=-0.1), 'class_quantile'),
    (dict(min_confidence=1.5), 'min_confidence'),
    (dict(class_quantile=True), 'class_quantile')])
def test_bad_rule_is_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ConfidenceRule(**kwargs)


def test_teacher_probabilities():
    probs = torch.rand(3, 4, 5)
    probs = probs / probs.sum(0)
    assert torch.equal(teacher_probabilities(probs), probs)  # ours: as is
    logits = torch.randn(3, 4, 5) * 3  # mmseg decode heads: softmax
    assert torch.allclose(teacher_probabilities(logits), logits.softmax(0))
    binary = teacher_probabilities(torch.randn(1, 4, 5))
    assert binary.shape == (2, 4, 5)
    assert torch.allclose(binary.sum(0), torch.ones(4, 5))


# ---------------------------------------------------------------- the folder
@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A small embedded world whose train split has no labels at all."""
    root = str(tmp_path_factory.mktemp('distill_world') / 'shapes')
    write_dataset(root, 0, 8, 4)
    shutil.rmtree(os.path.join(root, 'ann_dir', 'train'))
    return root


def label(world, out, **kwargs):
    options = {'test_dataloader.dataset.data_root': world,
               'model.layers': [0, 2]}
    options.update(kwargs.pop('cfg_options', {}))
    return pseudo_label(
        kwargs.pop('config', TEACHER), kwargs.pop('checkpoint', None), out,
        data_config=STUDENT, cfg_options=options,
        data_cfg_options={'train_dataloader.dataset.dataset.data_root': world},
        log=lambda m: None, **kwargs)


def labels_of(out):
    return {n: cv2.imread(os.path.join(out, n + '.png'), cv2.IMREAD_UNCHANGED)
            for n in sorted(folder.read_record(out)['images'])}


@pytest.fixture(scope='module')
def labelled(world, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('pseudo') / 'labels')
    record = label(world, out)
    return out, record


def test_pseudo_labels_without_train_labels(world, labelled):
    out, record = labelled
    assert record['status'] == 'complete'
    assert len(record['images']) == 8
    assert record['teacher']['classes'][0] == 'background'
    labels = labels_of(out)
    for name, lab in labels.items():
        assert lab.shape == (64, 64) and lab.dtype == np.uint8
        assert set(np.unique(lab)) <= set(range(7)) | {255}
    every = np.concatenate([l.ravel() for l in labels.values()])
    assert 0.4 < (every == 255).mean() < 0.6  # the default rule: half
    kept = record['kept']
    assert sum(v['kept'] for v in kept.values()) == (every != 255).sum()


@pytest.mark.slow
def test_pseudo_labels_match_the_teacher(world, labelled, tmp_path):
    """Where kept, a label is the teacher's own prediction (tools/test.py
    --out on the same images)."""
    out, _ = labelled
    shutil.copytree(os.path.join(world, 'img_dir', 'train'),
                    tmp_path / 'img_dir' / 'val')
    os.makedirs(tmp_path / 'ann_dir' / 'val')
    for name in os.listdir(tmp_path / 'img_dir' / 'val'):
        cv2.imwrite(str(tmp_path / 'ann_dir' / 'val' / name),
                    np.zeros((64, 64), np.uint8))
    run(['tools/test.py', TEACHER, '--work-dir', str(tmp_path / 'work'),
         '--out', str(tmp_path / 'pred'), '--cfg-options',
         f'test_dataloader.dataset.data_root={tmp_path}', 'model.layers=[0,2]'])
    for name, lab in labels_of(out).items():
        pred = cv2.imread(str(tmp_path / 'pred' / f'{name}.png'),
                          cv2.IMREAD_UNCHANGED)
        kept = lab != 255
        assert kept.any() and (lab[kept] == pred[kept]).all()


def test_resume_after_interruption(world, labelled, tmp_path, monkeypatch):
    out = str(tmp_path / 'labels')
    real_save = folder.save_raw
    calls = []

    def interrupted(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(args[1])
        real_save(*args)

    monkeypatch.setattr(folder, 'save_raw', interrupted)
    with pytest.raises(KeyboardInterrupt):
        label(world, out)
    monkeypatch.setattr(folder, 'save_raw', real_save)
    record = folder.read_record(out)
    assert record['status'] == 'labelling'
    assert sorted(os.listdir(os.path.join(out, folder.RAW))) == \
        sorted(n + '.npz' for n in calls)
    assert not [f for f in os.listdir(out) if f.endswith('.png')]
    # the student refuses the unfinished folder, naming the fix
    from mmseg_powerone.datasets import PseudoLabelDataset
    with pytest.raises(ValueError, match='not complete.*again'):
        PseudoLabelDataset(_student_dataset(world), out)
    stamps = {n: os.path.getmtime(folder.raw_path(out, n)) for n in calls}
    seen = []
    monkeypatch.setattr(folder, 'save_raw',
                        lambda *a: (seen.append(a[1]), real_save(*a)))
    label(world, out)
    assert sorted(seen) == sorted(set(folder.read_record(out)['images'])
                                  - set(calls))  # only the rest
    assert {n: os.path.getmtime(folder.raw_path(out, n))
            for n in calls} == stamps
    ref = labels_of(labelled[0])
    assert all((labels_of(out)[n] == ref[n]).all() for n in ref)


def test_another_teacher_is_refused(world, labelled):
    out, _ = labelled
    before = labels_of(out)
    with pytest.raises(ValueError, match='another teacher.*model settings'):
        label(world, out, cfg_options={'model.layers': [1, 3]})
    other = ('background', 'circle', 'square', 'triangle', 'star', 'cross',
             'hexagon')
    with pytest.raises(ValueError, match='class list'):
        pseudo_label(
            TEACHER, None, out, data_config=STUDENT,
            cfg_options={'test_dataloader.dataset.data_root': world,
                         'model.layers': [0, 2]},
            data_cfg_options={
                'train_dataloader.dataset.dataset.data_root': world,
                'train_dataloader.dataset.dataset.type': 'BaseSegDataset',
                'train_dataloader.dataset.dataset.img_suffix': '.png',
                'train_dataloader.dataset.dataset.metainfo': dict(
                    classes=other)}, log=lambda m: None)
    assert labels_of(out).keys() == before.keys()
    assert all((labels_of(out)[n] == before[n]).all() for n in before)


def test_other_weights_are_refused(world, labelled, tmp_path):
    out = str(tmp_path / 'labels')
    shutil.copytree(labelled[0], out)
    record = folder.read_record(out)
    record['teacher']['weights'] = '0' * 64  # labelled by other weights
    folder.write_record(out, record)
    with pytest.raises(ValueError, match='teacher weights'):
        label(world, out)


def test_changed_images_are_refused(world, labelled, tmp_path):
    root = str(tmp_path / 'shapes')
    shutil.copytree(world, root)
    out = str(tmp_path / 'labels')
    shutil.copytree(labelled[0], out)
    image = os.path.join(root, 'img_dir', 'train', '00003.png')
    img = cv2.imread(image)
    cv2.imwrite(image, 255 - img)
    os.remove(os.path.join(root, 'img_dir', 'train', '00005.png'))
    record = json.dumps(folder.read_record(out), sort_keys=True)
    with pytest.raises(ValueError, match=r'1 changed \(00003\).*1 gone '
                       r'\(00005\)'):
        label(root, out)
    assert json.dumps(folder.read_record(out), sort_keys=True) == record


def test_rule_that_ignores_everything(world, labelled, tmp_path):
    out = str(tmp_path / 'labels')
    shutil.copytree(labelled[0], out)
    before = labels_of(out)
    for name in before:  # a teacher never more than 90% sure
        labels, levels = folder.load_raw(out, name)
        folder.save_raw(out, name, labels, np.minimum(levels, 0.9 * LEVELS))
    stamps = {n: os.path.getmtime(folder.raw_path(out, n)) for n in before}
    with pytest.raises(ValueError, match='ignores every pixel.*--min-conf'):
        finalize(out, ConfidenceRule(min_confidence=0.95), log=lambda m: 0)
    assert all((labels_of(out)[n] == before[n]).all() for n in before)
    # a new rule re-uses the teacher's outputs: no second teacher pass
    record = finalize(out, ConfidenceRule(class_quantile=0), log=lambda m: 0)
    assert record['status'] == 'complete'
    assert {n: os.path.getmtime(folder.raw_path(out, n))
            for n in before} == stamps
    assert all((l != 255).all() for l in labels_of(out).values())


def test_foreign_folder_is_not_touched(world, tmp_path):
    out = tmp_path / 'mine'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(ValueError, match='not empty.*no pseudo-label'):
        label(world, str(out))
    assert os.listdir(out) == ['notes.txt']


def test_training_free_teacher_needs_a_data_config(world, tmp_path):
    with pytest.raises(ValueError, match='no train_dataloader.*--data-config'):
        pseudo_label(TEACHER, None, str(tmp_path / 'x'), log=print)


# ---------------------------------------------------------------- the student
def _student_dataset(world, **meta):
    ds = dict(type='SyntheticShapesDataset', data_root=world,
              data_prefix=dict(img_path='img_dir/train'),
              pipeline=[dict(type='LoadImageFromFile'),
                        dict(type='LoadAnnotations'),
                        dict(type='PackSegInputs')])
    ds.update(meta)
    return ds


def test_student_dataset_reads_the_pseudo_labels(world, labelled):
    from mmseg_powerone.datasets import PseudoLabelDataset
    out, record = labelled
    ds = PseudoLabelDataset(_student_dataset(world), out)
    assert len(ds) == 8
    assert list(ds.metainfo['classes']) == record['teacher']['classes']
    sample = ds[0]
    name = sorted(record['images'])[0]
    assert (sample['data_samples'].gt_sem_seg.data[0].numpy()
            == labels_of(out)[name]).all()


def test_student_of_other_classes_is_refused(world, labelled):
    from mmseg_powerone.datasets import PseudoLabelDataset
    other = ('background', 'circle', 'square', 'hexagon', 'star', 'cross',
             'ring')  # a student of other classes
    with pytest.raises(ValueError, match=r"classes \['background', "
                       r"'circle', 'square', 'hexagon'.*teacher's "
                       r"\['background', 'circle', 'square', 'triangle'"):
        PseudoLabelDataset(_student_dataset(
            world, type='BaseSegDataset', img_suffix='.png',
            metainfo=dict(classes=other)), labelled[0])


def test_student_of_other_images_is_refused(world, labelled, tmp_path):
    from mmseg_powerone.datasets import PseudoLabelDataset
    root = tmp_path / 'shapes'
    shutil.copytree(world, root)
    os.remove(root / 'img_dir' / 'train' / '00002.png')
    with pytest.raises(ValueError, match="other images.*00002"):
        PseudoLabelDataset(_student_dataset(str(root)), labelled[0])
    with pytest.raises(FileNotFoundError, match='pseudo_label.py'):
        PseudoLabelDataset(_student_dataset(world), str(tmp_path / 'none'))


@pytest.mark.slow
def test_pseudo_label_tool_refuses_a_bad_rule(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, 'tools/pseudo_label.py', TEACHER, '--out',
         str(tmp_path / 'x'), '--class-quantile', '1.5'], cwd=REPO,
        capture_output=True, text=True)
    assert proc.returncode == 2 and 'class_quantile=1.5' in proc.stderr
    assert not (tmp_path / 'x').exists()


@pytest.mark.slow
def test_two_processes_label_as_one(world, labelled, tmp_path):
    """--launcher pytorch shards the images across processes (torchrun):
    the same labels and record as one process."""
    import subprocess
    import sys
    from helpers import dist_env
    out = str(tmp_path / 'labels')
    env = dist_env()
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={env["PORT"]}', 'tools/pseudo_label.py', TEACHER,
         '--out', out, '--launcher', 'pytorch', '--data-config', STUDENT,
         '--cfg-options', f'test_dataloader.dataset.data_root={world}',
         'model.layers=[0,2]', '--data-cfg-options',
         f'train_dataloader.dataset.dataset.data_root={world}'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ref = labels_of(labelled[0])
    got = labels_of(out)
    assert got.keys() == ref.keys()
    assert all((got[n] == ref[n]).all() for n in ref)
    assert folder.read_record(out)['teacher'] == \
        folder.read_record(labelled[0])['teacher']


def test_an_adapted_inferencer_is_a_teacher(world, tmp_path):
    """adapt() on one example, save(), and the saved config + checkpoint
    label a folder of the user's images (a data config naming the
    adaptation's classes)."""
    from mmseg_powerone.apis import PowerOneInferencer
    image = os.path.join(world, 'img_dir', 'val', '00000.png')
    mask = cv2.imread(os.path.join(world, 'ann_dir', 'val', '00000.png'),
                      cv2.IMREAD_UNCHANGED)
    shape = int(np.bincount(mask.ravel(), minlength=7)[1:].argmax()) + 1
    name = ('circle', 'square', 'triangle', 'star', 'cross', 'ring')[shape - 1]
    tuned = PowerOneInferencer(layers=[0, 2], device='cpu').adapt(
        [(image, mask == shape, name)], classes=[name], epochs=1)
    config = tuned.save(str(tmp_path / 'adapted.pth'))
    data = tmp_path / 'my_images.py'
    data.write_text(f"""
train_dataloader = dict(dataset=dict(
    type='BaseSegDataset', data_root={world!r},
    data_prefix=dict(img_path='img_dir/train'), img_suffix='.png',
    metainfo=dict(classes=('background', {name!r})), pipeline=[]))
""")
    out = str(tmp_path / 'labels')
    record = pseudo_label(config, str(tmp_path / 'adapted.pth'), out,
                          data_config=str(data), log=lambda m: None)
    assert record['teacher']['classes'] == ['background', name]
    values = set()
    for lab in labels_of(out).values():
        values |= set(np.unique(lab).tolist())
    assert values <= {0, 1, 255} and 1 in values


@pytest.mark.slow
def test_distill_refuses_a_world_of_another_seed(world):
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, 'tools/distill.py', '--data-root', world,
         '--world-seed', '1', '--work-dir', os.path.join(world, 'w')],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert 'holds the world of seed 0, not --world-seed 1' in proc.stderr
    assert not os.path.exists(os.path.join(world, 'w'))


def test_more_than_256_classes_give_16_bit_labels(tmp_path):
    out = str(tmp_path / 'labels')
    classes = [f'class {i}' for i in range(300)]
    folder.write_record(out, dict(
        version=folder.VERSION, status='labelling',
        teacher=dict(classes=classes), images={'a': '0', 'sub/b': '1'}))
    labels = np.array([[0, 280], [299, 3]])
    folder.save_raw(out, 'a', labels, quantize(np.full((2, 2), 0.9)))
    folder.save_raw(out, 'sub/b', labels, quantize(np.full((2, 2), 0.8)))
    record = finalize(out, ConfidenceRule(class_quantile=0), log=lambda m: 0)
    assert record['status'] == 'complete'
    for name in ('a', 'sub/b'):
        lab = cv2.imread(os.path.join(out, name + '.png'),
                         cv2.IMREAD_UNCHANGED)
        assert lab.dtype == np.uint16 and (lab == labels).all()
