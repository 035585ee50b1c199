"""Label a split's images with any teacher, for a student to train on.

The teacher is any segmentor config (ours, training-free or tuned, or a
stock mmseg model such as a student of an earlier round) with an optional
checkpoint. It runs through mmengine's Runner as ``tools/test.py`` runs it,
so its hooks (``InfoScoreHook`` choosing the layers), checkpoint loading,
progress lines and ``--launcher`` sharding are the ones a test uses; the
labels of the split are never read (no ``LoadAnnotations``, no label
folder). :class:`PseudoLabelHook` writes each image's arg-max and
confidence as it comes; the main process then applies the
:class:`~.confidence.ConfidenceRule` over the whole split and writes the
label PNGs (:mod:`.folder` describes the folder).

Call flow::

    pseudo_label()
      -> _prepare(): images, teacher identity, record checked or written
      -> runner.test(): InfoScoreHook (layers) -> PseudoLabelHook
             .before_test(): teacher weights and classes checked/recorded
             .after_test_iter(): OUT/.raw/<name>.npz per image
      -> finalize(): rule thresholds over the split -> OUT/<name>.png
"""
import copy
import hashlib
import json
import os
import os.path as osp
import time
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmseg.registry import DATA_SAMPLERS, HOOKS

from ..utils import unwrap_model
from ..utils.io import hash_state_dict
from ..utils.labels import save_label_png
from . import folder
from .confidence import (LEVELS, ConfidenceRule, add_class_histograms,
                         kept_counts, quantize)

# dataset wrappers whose images are those of an inner ``dataset``
_ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadBiomedicalAnnotation',
                       'LoadDepthAnnotation')


@DATA_SAMPLERS.register_module()
class PseudoLabelSampler(DefaultSampler):
    """The dataset's indices in order, split across processes without
    padding (no image is labelled twice); once :meth:`start_skipping` is
    called, less ``skip`` (images an earlier, interrupted run labelled).

    Hooks that read the test images before labelling starts (InfoScoreHook
    ranking the layers) see the whole split in its order, as a first run
    does, so a resumed run picks the same layers."""

    def __init__(self, dataset, skip: Sequence[int] = (), seed=None):
        super().__init__(dataset, shuffle=False, seed=seed, round_up=False)
        self.skip = set(int(i) for i in skip)
        self.skipping = False

    def start_skipping(self) -> None:
        self.skipping = True

    def _indices(self):
        indices = range(len(self.dataset))
        if self.skipping:
            indices = [i for i in indices if i not in self.skip]
        return list(indices)[self.rank::self.world_size]

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


def weights_fingerprint(model) -> str:
    """sha256 of every tensor the model predicts with, by name: parameters,
    buffers and extra state (our segmentor's chosen layers and classes)."""
    h = hashlib.sha256()
    hash_state_dict(h, model.state_dict())
    return h.hexdigest()


def teacher_probabilities(scores: torch.Tensor) -> torch.Tensor:
    """Class probabilities [C, H, W] from a segmentor's ``seg_logits``:
    ours already holds probabilities (non-negative, summing to 1 over
    classes), mmseg's decode heads give logits (softmax; one channel is a
    sigmoid's foreground, made two classes)."""
    scores = scores.float()
    if scores.shape[0] == 1:
        fg = scores.sigmoid()
        return torch.cat([1 - fg, fg])
    if scores.min() >= 0 and torch.allclose(
            scores.sum(0), torch.ones_like(scores[0]), atol=1e-3):
        return scores
    return scores.softmax(0)


@HOOKS.register_module()
class PseudoLabelHook(Hook):
    """Write the teacher's arg-max and confidence of every test image to a
    pseudo-label folder, after checking the folder's teacher.

    Runs after the other ``before_test`` hooks (``InfoScoreHook`` chooses
    the layers there), so the weights fingerprint covers what the teacher
    predicts with.

    Args:
        out_dir: the pseudo-label folder (its record already written).
        img_dir: the split's image folder; labels are named after the
            images' paths under it.
        img_suffix: the images' suffix, left out of the label names.
    """

    priority = 'LOW'

    def __init__(self, out_dir: str, img_dir: str, img_suffix: str = ''):
        self.out_dir = out_dir
        self.img_dir = img_dir
        self.img_suffix = img_suffix
        self.num_classes = None

    def before_test(self, runner) -> None:
        model = unwrap_model(runner.model)
        # the dataset's class names (the ones a student and its evaluation
        # use; ClassNamesCheckHook has checked ours against them), else the
        # model's own
        meta = runner.test_dataloader.dataset.metainfo or {}
        if not meta.get('classes'):
            meta = getattr(model, 'dataset_meta', None) or {}
        classes = [str(c) for c in meta.get('classes') or []]
        if not classes:
            raise ValueError(
                'Neither the dataset nor the teacher names classes: give the '
                'data config a dataset with metainfo=dict(classes=...).')
        palette = meta.get('palette')
        self.num_classes = len(classes)
        teacher = dict(weights=weights_fingerprint(model), classes=classes,
                       palette=[list(map(int, p)) for p in palette]
                       if palette is not None else None)
        record = folder.read_record(self.out_dir)
        if record is None:
            raise RuntimeError(f'{folder.record_path(self.out_dir)} is gone '
                               'while labelling; start the run again.')
        known = record['teacher']
        if known.get('weights'):
            folder.check_same_teacher(
                self.out_dir, dict(teacher=known, images=record['images']),
                dict(teacher={**known, **teacher}, images=record['images']))
        elif is_main_process():
            record['teacher'].update(teacher)
            folder.write_record(self.out_dir, record)
        runner.logger.info(
            f'Pseudo-labels of {len(classes)} classes to {self.out_dir} '
            f'(teacher fingerprint {teacher["weights"][:12]}).')
        sampler = getattr(runner.test_dataloader, 'sampler', None)
        if hasattr(sampler, 'start_skipping'):
            sampler.start_skipping()  # the teacher checked: label the rest

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        for sample in outputs or []:
            probs = teacher_probabilities(sample.seg_logits.data)
            if probs.shape[0] != self.num_classes:
                raise ValueError(
                    f'The teacher scores {probs.shape[0]} classes but the '
                    f'dataset names {self.num_classes}: give the data config '
                    "a dataset of the teacher's classes (or the teacher a "
                    'checkpoint of its config).')
            labels = sample.pred_sem_seg.data[0].cpu().numpy()
            size = tuple(sample.metainfo.get('ori_shape', labels.shape))[:2]
            if labels.shape != size:
                raise ValueError(
                    f'The teacher predicts {labels.shape[0]} x '
                    f'{labels.shape[1]} labels for a {size[0]} x {size[1]} '
                    f'image ({sample.metainfo.get("img_path")}): a student '
                    "needs labels on each image's own grid. For our "
                    "segmentors: --cfg-options model.test_cfg.pred_grid="
                    'original.')
            confidence = probs.max(0).values.cpu().numpy()
            if confidence.shape != labels.shape:
                # class maps kept at the network's size (huge originals)
                from ..utils.labels import resize_labels
                confidence = resize_labels(confidence, labels.shape)
            name = folder.label_name(sample.metainfo['img_path'],
                                     self.img_dir, self.img_suffix)
            folder.save_raw(self.out_dir, name, labels, quantize(confidence))


def _unwrap_dataset(ds_cfg):
    """The innermost dataset of wrappers that hold one ``dataset``
    (PseudoLabelDataset, OneShotDataset, RepeatDataset...)."""
    while isinstance(ds_cfg, dict) and 'dataset' in ds_cfg:
        ds_cfg = ds_cfg['dataset']
    if not isinstance(ds_cfg, dict) or 'datasets' in ds_cfg:
        raise ValueError(
            'The split is a concatenation of datasets; label each dataset '
            'with its own --out instead.')
    return ds_cfg


def unlabelled_test_pipeline(cfg) -> list:
    """A config's test pipeline without its annotation loading: how the
    model sees an image whose labels are not read."""
    test_ds = _unwrap_dataset(cfg.test_dataloader['dataset'])
    return [copy.deepcopy(t) for t in test_ds['pipeline']
            if t.get('type') not in _ANNOTATION_LOADERS]


def split_dataset_cfg(teacher_cfg, data_cfg, split: str):
    """The dataset config of ``split``'s images, as the teacher sees them:
    the data config's dataset (wrappers removed, no label folder) with the
    teacher's test pipeline less its annotation loading."""
    loader = data_cfg.get(f'{split}_dataloader')
    if not loader:
        raise ValueError(
            f'The config has no {split}_dataloader to take the images from '
            '(a training-free config has no training data): give '
            f'--data-config CONFIG whose {split}_dataloader lists them, such '
            'as the student config under configs/distill/.')
    ds = copy.deepcopy(_unwrap_dataset(loader['dataset']))
    ds = ds.to_dict() if hasattr(ds, 'to_dict') else dict(ds)
    prefix = dict(ds.get('data_prefix') or {})
    if 'img_path' not in prefix:
        raise ValueError(f'The {split} dataset has no data_prefix.img_path.')
    ds['data_prefix'] = dict(img_path=prefix['img_path'])  # labels unread
    ds['pipeline'] = unlabelled_test_pipeline(teacher_cfg)
    ds['reduce_zero_label'] = ds.get('reduce_zero_label', False)
    return ds


def _model_settings(cfg) -> str:
    """sha256 of the teacher's model settings and test pipeline: what
    decides its predictions besides the weights."""
    test_ds = _unwrap_dataset(cfg.test_dataloader['dataset'])
    text = json.dumps(dict(model=cfg.model.to_dict() if hasattr(
        cfg.model, 'to_dict') else cfg.model, pipeline=test_ds['pipeline']),
        sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _prepare(cfg, config, checkpoint, out_dir, split, ds_cfg):
    """Build the split's dataset, check the folder (main process), return
    the images, their label names and the indices already done."""
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(ds_cfg)
    img_dir = dataset.data_prefix['img_path']
    suffix = getattr(dataset, 'img_suffix', '')
    paths = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    if not paths:
        raise ValueError(f'No images under {img_dir}: point the {split} '
                         'dataset at a folder with images.')
    names = [folder.label_name(p, img_dir, suffix) for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f'Two images of {img_dir} would share a label name; '
                         'rename them apart.')
    if is_main_process():
        record = dict(
            version=folder.VERSION, status='labelling', split=split,
            img_dir=osp.abspath(img_dir),
            teacher=dict(config=osp.abspath(config) if osp.isfile(config)
                         else config,
                         checkpoint=osp.abspath(checkpoint) if checkpoint
                         else None,
                         model=_model_settings(cfg)),
            images={n: folder.file_sha1(p) for n, p in zip(names, paths)})
        old = folder.read_record(out_dir)
        if old is None:
            folder.write_record(out_dir, record)
        else:
            folder.check_same_teacher(out_dir, old, record)
    barrier()
    done = set(folder.done_names(out_dir, names))
    barrier()  # every process listed the same state before any writes
    skip = [i for i, n in enumerate(names) if n in done]
    return dict(img_dir=img_dir, suffix=suffix, names=names, skip=skip)


def finalize(out_dir: str, rule: ConfidenceRule, log=print) -> dict:
    """Apply ``rule`` over the split's raw teacher outputs and write the
    label PNGs; the record becomes complete. Stops before writing any label
    when the rule would ignore every pixel."""
    record = folder.read_record(out_dir)
    names = sorted(record['images'])
    missing = [n for n in names if not osp.isfile(folder.raw_path(out_dir, n))]
    if missing:
        raise RuntimeError(
            f'{len(missing)} images of {out_dir} have no teacher output '
            f'(e.g. {missing[0]}); run tools/pseudo_label.py again to finish.')
    num_classes = len(record['teacher']['classes'])
    hist = np.zeros((num_classes, LEVELS), np.int64)
    for name in names:
        labels, levels = folder.load_raw(out_dir, name)
        add_class_histograms(hist, labels, levels)
    thresholds = rule.thresholds(hist)
    counts = kept_counts(hist, thresholds)
    if sum(counts['kept']) == 0:
        raise ValueError(
            f'The confidence rule ({rule.describe()}) ignores every pixel of '
            f'the {len(names)} images, so a student would learn nothing; no '
            'label was written. Lower --min-confidence or --class-quantile '
            f'and run again (the teacher outputs in {out_dir}/{folder.RAW} '
            'are reused: no second teacher pass).')
    record.update(status='writing', rule=rule.to_dict())
    folder.write_record(out_dir, record)  # a half-rewritten folder is not
    for name in names:                    # complete: students refuse it
        labels, levels = folder.load_raw(out_dir, name)
        save_label_png(folder.label_path(out_dir, name),
                       rule.apply(labels, levels, thresholds), num_classes)
    classes = record['teacher']['classes']
    record.update(
        status='complete',
        thresholds={c: t / (LEVELS - 1) for c, t in zip(classes, thresholds)},
        kept={c: dict(kept=k, total=t) for c, k, t in
              zip(classes, counts['kept'], counts['total'])})
    folder.write_record(out_dir, record)
    share = sum(counts['kept']) / max(1, sum(counts['total']))
    log(f'Pseudo-labels: {len(names)} images in {out_dir}, '
        f'{100 * share:.1f}% of pixels kept ({rule.describe()}).')
    return record


def pseudo_label(config: str, checkpoint: Optional[str], out_dir: str,
                 split: str = 'train', data_config: Optional[str] = None,
                 rule: Optional[ConfidenceRule] = None,
                 launcher: str = 'none', cfg_options: Optional[dict] = None,
                 data_cfg_options: Optional[dict] = None,
                 log=print) -> dict:
    """Label ``split``'s images of ``data_config`` (default: the teacher's
    config) with the teacher ``config`` [+ ``checkpoint``] into
    ``out_dir``; resumes an interrupted run. ``cfg_options`` and
    ``data_cfg_options`` override settings of the two configs. Returns the
    folder's record."""
    from ..engine.run_guards import (init_cpu_process_group,
                                     process_group_closed, work_dir_lock)
    from ..utils.resources import load_config
    rule = rule or ConfidenceRule()
    cfg = load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    data_cfg = load_config(data_config) if data_config else cfg.copy()
    if data_cfg_options:
        data_cfg.merge_from_dict(data_cfg_options)
    ds_cfg = split_dataset_cfg(cfg, data_cfg, split)
    out_dir = osp.abspath(out_dir)
    if osp.isdir(out_dir) and os.listdir(out_dir) and \
            folder.read_record(out_dir) is None:
        raise ValueError(
            f'{out_dir} is not empty and holds no pseudo-label record '
            f'({folder.RECORD}): give an empty or new --out, so that nothing '
            'of yours is overwritten.')
    cfg.launcher = launcher
    if launcher != 'none':
        os.environ.setdefault('LOCAL_RANK', '0')
        if torch.cuda.is_available():
            from mmengine.dist import init_dist
            init_dist(launcher)
        else:
            init_cpu_process_group(cfg)
    started = time.time()
    with process_group_closed():
        from mmengine.registry import init_default_scope
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        os.makedirs(out_dir, exist_ok=True)
        work_dir = osp.join(out_dir, '.work')
        with work_dir_lock(work_dir):
            state = _prepare(cfg, config, checkpoint, out_dir, split, ds_cfg)
            if state['skip']:
                log(f'Resuming: {len(state["skip"])} of '
                    f'{len(state["names"])} images already labelled.')
            # also when none is left: the run checks the teacher
            _run_teacher(cfg, checkpoint, ds_cfg, state, out_dir, work_dir)
            barrier()
            record = finalize(out_dir, rule, log) if is_main_process() \
                else None
            barrier()
    if record is not None:
        log(f'Pseudo-labelling took {time.time() - started:.0f} s.')
    return record if record is not None else folder.read_record(out_dir)


def _run_teacher(cfg, checkpoint, ds_cfg, state, out_dir, work_dir):
    """The teacher's test run over the split: its own model, hooks and
    checkpoint; the split's images as the test set, our sampler (skips what
    is done) and hook (writes the raw outputs), no metric."""
    from ..engine.runner import build_runner
    loader = cfg.get('test_dataloader') or {}
    cfg.test_dataloader = dict(
        batch_size=loader.get('batch_size', 1),
        num_workers=loader.get('num_workers', 0),
        persistent_workers=False,
        sampler=dict(type='PseudoLabelSampler', skip=state['skip']),
        dataset=ds_cfg)
    cfg.test_evaluator = dict(type='Evaluator', metrics=[])
    cfg.test_cfg = dict(type='TestLoop')
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(
        type='PseudoLabelHook', out_dir=out_dir, img_dir=state['img_dir'],
        img_suffix=state['suffix'])]
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    cfg.resume = False
    build_runner(cfg).test()


__all__: List[str] = ['PseudoLabelHook', 'PseudoLabelSampler', 'finalize',
                      'pseudo_label', 'split_dataset_cfg',
                      'teacher_probabilities', 'weights_fingerprint']
