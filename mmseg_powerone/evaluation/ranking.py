"""Label-level checks of a VLM: does its ITM score tell which classes are in
an image? (Judged before its maps are.)"""
from typing import Dict, Sequence

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind='mergesort')
    ranks = np.empty(len(values))
    ordered = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and ordered[j + 1] == ordered[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (ties get average ranks); NaN without both
    positives and negatives."""
    label = np.asarray(label, dtype=bool)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    ranks = average_ranks(score)
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def presence_auroc(scores: np.ndarray, present: np.ndarray,
                   names: Sequence[str]) -> Dict[str, float]:
    """Per-class AUROC of ``scores`` [N, K] for ``present`` [N, K], plus
    their mean under 'mean'."""
    result = {name: auroc(scores[:, k], present[:, k])
              for k, name in enumerate(names)}
    result['mean'] = float(np.nanmean(list(result.values())))
    return result


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    ra, rb = average_ranks(np.asarray(a)), average_ranks(np.asarray(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float('nan')
