"""One pass of a segmentor over a dataloader, shared by InfoScoreHook, the
layer-ranking CLI and the quickstart: every layer's maps come from the same
forward pass per image."""
from typing import Dict, Iterator, Optional, Sequence

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log

from .score import PIXEL_EPS, InfoScoreAccumulator, class_marginals
from ..models.utils.postprocess import IGNORE_INDEX


def iter_preprocessed(model, dataloader, num_images: Optional[int] = None,
                      shard: bool = True) -> Iterator:
    """Yield preprocessed batches ``(inputs, data_samples)`` of the first
    ``num_images`` images of the loader's dataset, in dataset order.

    Each distributed rank takes every world_size-th batch of that fixed list,
    so 1 and N processes see the same images whatever the sampler does.
    """
    dataset = dataloader.dataset
    total = len(dataset)
    n = total if num_images is None else min(num_images, total)
    if num_images is not None and total < num_images:
        # 'InfoScore' keeps it on a quiet_run terminal (adapt)
        print_log(f'InfoScore: the dataloader has only {total} images; '
                  f'using {total} (asked for {num_images}).',
                  logger='current', level=30)
    bs = dataloader.batch_size or 1
    batches = [list(range(s, min(n, s + bs))) for s in range(0, n, bs)]
    rank, world = get_dist_info() if shard else (0, 1)
    collate = dataloader.collate_fn
    for idx in batches[rank::world]:
        data = model.data_preprocessor(collate([dataset[i] for i in idx]),
                                       False)
        yield data['inputs'], data['data_samples']


class _Progress:
    """One log line per tenth of the images (this process's share)."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done, self.shown = what, total, 0, 0
        self.world = get_dist_info()[1]

    def update(self, n: int) -> None:
        self.done += n * self.world  # every rank moves at the same pace
        step = max(1, self.total // 10)
        if self.done // step > self.shown // step or self.done >= self.total:
            self.shown = self.done
            print_log(f'{self.what}: {min(self.done, self.total)}/'
                      f'{self.total} images', logger='current')


@torch.no_grad()
def rank_layers(model, dataloader, num_images: int, topk: int) -> Dict:
    """InfoScore of every attention layer on the first ``num_images``
    images (labels unused), all layers from one forward pass per image.

    Single-prompt mode (docs/en/method.md): the first template, objects by their
    first name, whatever the model predicts with. The marginal runs over
    the background prompts one by one and the other classes (as the
    reference code does): with background synonyms, a layer that tells
    backgrounds apart spreads its background mass over several entries
    across the dataset."""
    if num_images < 1:
        raise ValueError(f'num_images={num_images}: InfoScore needs at least '
                         'one image.')
    layers = list(range(model.adapter.num_layers))
    entries = model.ranking_prompts.entry_names(group_background=False)
    acc = InfoScoreAccumulator(len(layers), len(entries))
    progress = _Progress('InfoScore', min(num_images, len(dataloader.dataset)))
    was_training = model.training
    model.eval()
    try:
        for inputs, _ in iter_preprocessed(model, dataloader, num_images):
            maps = model.layer_maps(inputs, layers, group_background=False,
                                    single_prompt=True)[
                'maps']  # [B, L, P_bg + C - 1, h, w]
            acc.update(class_marginals(maps, inputs.shape[2:],
                                       model.align_corners))
            progress.update(inputs.shape[0])
    finally:
        model.train(was_training)
    acc.all_reduce()
    return dict(acc.finalize(topk), marginal_entries=entries)


@torch.no_grad()
def compare_with_labels(model, dataloader, num_images: int) -> Dict:
    """InfoScore's statistics at class level, for every layer and for the
    label maps of the same first ``num_images`` images.

    The ranking's own marginal keeps background prompts apart; labels have
    one background class, so here both sides are class marginals
    (background prompts summed, single-prompt mode). The labels' own
    InfoScore says how committed and how spread a perfect layer would look:
    a layer far above it puts its mass where the labels do not (one class
    taking most of each image, objects taking the background), which the
    formula rewards. Layer marginals cover the whole input, as InfoScore's
    do; label marginals cover the labelled pixels (``ignore_index`` left
    out). Single process.

    Returns:
        dict(labels=dict(infoscore, mean_image_entropy, dataset_entropy,
        cov, mean_marginal), and per layer (class level): infoscore,
        mean_image_entropy, dataset_entropy, cov, mean_marginal (the
        dataset's mean class marginal, [L][C]), l1_to_labels (mean over
        images of the L1 distance between the layer's marginal and the
        labels'); classes, num_images).
    """
    layers = list(range(model.adapter.num_layers))
    C = model.num_classes
    rows = []
    model.eval()
    for inputs, samples in iter_preprocessed(model, dataloader, num_images,
                                             shard=False):
        maps = model.layer_maps(inputs, layers, single_prompt=True)[
            'maps']  # [B, L, C, h, w]
        layer_m = class_marginals(maps, inputs.shape[2:],
                                  model.align_corners).double()  # [B, L, C]
        label_m = []
        for s in samples:
            label = s.gt_sem_seg.data.flatten()
            label = label[label != IGNORE_INDEX].long()
            if label.numel() == 0 or int(label.max()) >= C:
                raise ValueError(
                    f'{s.metainfo.get("seg_map_path", "a label map")} has no '
                    f'labelled pixels or labels outside 0..{C - 1}: the '
                    'comparison needs label maps of the model\'s classes.')
            hist = torch.bincount(label, minlength=C).double() / label.numel()
            # the marginal of one-hot maps clamped as class_marginals
            # clamps a layer's: what a layer predicting the labels gets
            label_m.append(hist + PIXEL_EPS * (1 - hist))
        rows.append(torch.cat([torch.stack(label_m)[:, None],
                               layer_m.cpu()], dim=1))  # [B, 1 + L, C]
    m = torch.cat(rows)
    acc = InfoScoreAccumulator(1 + len(layers), C)
    acc.update(m)
    stats = acc.finalize(topk=1)
    keys = ('infoscore', 'mean_image_entropy', 'dataset_entropy', 'cov')
    stats['mean_marginal'] = m.mean(dim=0).tolist()  # [1 + L, C]
    keys += ('mean_marginal',)
    l1 = (m[:, 1:] - m[:, :1]).abs().sum(dim=2).mean(dim=0)  # [L]
    return dict(labels={k: stats[k][0] for k in keys},
                **{k: stats[k][1:] for k in keys},
                l1_to_labels=l1.tolist(), classes=list(model.class_names),
                num_images=stats['num_images'])


@torch.no_grad()
def evaluate_layer_sets(model, dataloader, layer_sets: Dict[str, Sequence[int]],
                        dataset_meta: dict,
                        num_images: Optional[int] = None) -> Dict[str, dict]:
    """mmseg IoUMetric results of several layer ensembles from one forward
    pass per image: ``{name: metrics}`` for ``{name: layers}``. Single
    process (an analysis tool, not the distributed test loop)."""
    from mmseg.evaluation import IoUMetric

    from ..models.utils.maps import ensemble_probs
    needed = sorted({l for ls in layer_sets.values() for l in ls})
    pos = {l: i for i, l in enumerate(needed)}
    metrics = {}
    for name in layer_sets:
        metrics[name] = IoUMetric(iou_metrics=['mIoU'])
        metrics[name].dataset_meta = dataset_meta
    model.eval()
    batches = iter_preprocessed(model, dataloader, num_images, shard=False)
    for inputs, samples in batches:
        maps = model.layer_maps(inputs, needed)['maps']  # [B, L, C, h, w]
        for name, ls in layer_sets.items():
            sub = maps[:, [pos[l] for l in ls]]
            probs = ensemble_probs(sub, inputs.shape[2:], model.align_corners)
            results = model.postprocess_result(
                probs, [s.clone() for s in samples])
            metrics[name].process({}, [r.to_dict() for r in results])
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(30)  # IoUMetric logs a table per call: keep it quiet
    try:
        return {name: m.compute_metrics(m.results)
                for name, m in metrics.items()}
    finally:
        logger.setLevel(level)


@torch.no_grad()
def presence_scores(model, dataloader, num_images: Optional[int] = None):
    """Per-image class ITM scores [N, C] (max over each class's prompts) and
    class presence from the labels [N, C], for presence AUROC."""
    idx = torch.as_tensor(model.prompts.class_index)
    scores, present = [], []
    model.eval()
    for inputs, samples in iter_preprocessed(model, dataloader, num_images,
                                             shard=False):
        itm = model.layer_maps(inputs)['itm']  # [B, P]
        per_class = torch.stack([itm[:, idx == c].amax(1)
                                 for c in range(model.num_classes)], 1)
        scores.append(per_class.cpu())
        for s in samples:
            labels = s.gt_sem_seg.data.unique()
            present.append([bool((labels == c).any())
                            for c in range(model.num_classes)])
    return torch.cat(scores).numpy(), torch.tensor(present).numpy()
