"""Images per second of a teacher and its student, measured side by side
in one process on the same images."""
import statistics
import time
from typing import Dict, List

import torch


def preload_batches(model_cfg, images: List[str], batch_size: int):
    """``images`` through a config's test pipeline (labels not loaded), as
    batches of ``batch_size`` for its ``test_step``."""
    from mmengine.dataset import Compose, pseudo_collate
    from .pseudo_label import unlabelled_test_pipeline
    compose = Compose(unlabelled_test_pipeline(model_cfg))
    samples = [compose(dict(img_path=p, seg_fields=[], reduce_zero_label=False))
               for p in images]
    return [pseudo_collate(samples[i:i + batch_size])
            for i in range(0, len(samples), batch_size)]


@torch.no_grad()
def _images_per_s(model, batches, network_only: bool = False) -> float:
    """``test_step`` over the batches; ``network_only``: the network's
    class scores at the input size alone (``model.inference`` on batches
    preprocessed beforehand), without mmseg's per-image post-processing."""
    if network_only:
        batches = [model.data_preprocessor(b, False) for b in batches]
    start = time.perf_counter()
    n = 0
    for batch in batches:
        if network_only:
            model.inference(batch['inputs'],
                            [s.metainfo for s in batch['data_samples']])
        else:
            model.test_step(batch)
        n += len(batch['inputs'])
    return n / (time.perf_counter() - start)


def side_by_side(models: Dict[str, tuple], rounds: int = 3,
                 network_only: bool = False) -> Dict[str, float]:
    """Median images/s of each ``name -> (model, batches)`` over ``rounds``
    alternating rounds (each model once per round, after one warm-up pass),
    so that the machine's drift during the run falls on all of them alike.
    Each pass is mmseg's whole prediction path, ``model.test_step``:
    normalisation, forward, back to each image's size, arg-max (or with
    ``network_only`` the network's class scores alone)."""
    for model, batches in models.values():
        model.eval()
        _images_per_s(model, batches[:1], network_only)  # warm-up
    runs = {name: [] for name in models}
    for _ in range(rounds):
        for name, (model, batches) in models.items():
            runs[name].append(_images_per_s(model, batches, network_only))
    return {name: statistics.median(v) for name, v in runs.items()}


@torch.no_grad()
def postprocess_images_per_s(model, batches, rounds: int = 3) -> float:
    """images/s of mmseg's post-processing alone (each image's scores back
    to its size, arg-max, packed into its data sample) on the model's own
    outputs: the part of ``test_step`` no network can make faster."""
    model.eval()
    outputs = []
    for batch in batches:
        data = model.data_preprocessor(batch, False)
        samples = data['data_samples']
        outputs.append((model.inference(
            data['inputs'], [s.metainfo for s in samples]), samples))
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for logits, samples in outputs:
            model.postprocess_result(logits, samples)
        rates.append(sum(len(s) for _, s in outputs) /
                     (time.perf_counter() - start))
    return statistics.median(rates)
