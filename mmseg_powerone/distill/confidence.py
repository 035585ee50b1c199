"""Which teacher pixels a student trains on: the confidence rule.

A pixel's confidence is the teacher's probability of the class it predicts
there. The rule ignores (label 255) a pixel when its confidence is under

* ``min_confidence``, an absolute floor (default 0: off), or
* its class's threshold: the ``class_quantile``-quantile of the confidences
  of all pixels the teacher gave that class over the whole split (default
  0.5: each class keeps its more confident half).

The class-wise rule keeps the same share of every class, so classes the
teacher is unsure of everywhere still teach the student; a single absolute
threshold removes them (measured on the embedded world in
``docs/en/user_guides/distill.md``).

Confidences are stored as ``round(p * 65535)`` in 16 bits, so the
quantiles are exact over those integers and come from a histogram per class
(bounded memory for any split size) instead of every pixel.
"""
from dataclasses import asdict, dataclass
from typing import Dict, List

import numpy as np

IGNORE_INDEX = 255
LEVELS = 65536  # confidences stored as uint16: round(p * 65535)


def quantize(confidence: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] as uint16 levels."""
    return np.clip(np.rint(np.asarray(confidence, np.float64) * (LEVELS - 1)),
                   0, LEVELS - 1).astype(np.uint16)


@dataclass(frozen=True)
class ConfidenceRule:
    """The rule above; arguments are checked when it is made."""

    class_quantile: float = 0.5
    min_confidence: float = 0.0

    def __post_init__(self):
        q, p = self.class_quantile, self.min_confidence
        if isinstance(q, bool) or not isinstance(q, (int, float)) \
                or not 0 <= q < 1:
            raise ValueError(
                f'class_quantile={q!r}: give a share in [0, 1) of each '
                "class's pixels to ignore, least confident first (0 keeps "
                'every pixel, 0.5 the more confident half).')
        if isinstance(p, bool) or not isinstance(p, (int, float)) \
                or not 0 <= p <= 1:
            raise ValueError(
                f'min_confidence={p!r}: give a probability in [0, 1] (pixels '
                'whose teacher probability is lower are ignored; 0 turns the '
                'floor off).')

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        parts = [f'each class keeps its pixels at or above its '
                 f'{self.class_quantile:g}-quantile of confidence']
        if self.min_confidence > 0:
            parts.append(f'and at least {self.min_confidence:g}')
        return ' '.join(parts)

    def thresholds(self, histograms: np.ndarray) -> List[int]:
        """Per class, the lowest kept confidence level (uint16 units) from
        ``histograms`` [C, LEVELS] (pixel counts per predicted class and
        level). A class with no pixels gets the floor alone."""
        floor = int(np.ceil(self.min_confidence * (LEVELS - 1) - 1e-9))
        out = []
        for hist in np.asarray(histograms, np.int64):
            total = int(hist.sum())
            level = 0
            if total and self.class_quantile > 0:
                # the level of the k-th least confident pixel, k the
                # quantile's index among the class's sorted pixels: fewer
                # than the quantile's share lie under it
                k = int(np.floor(self.class_quantile * (total - 1)))
                level = int(np.searchsorted(np.cumsum(hist), k + 1))
            out.append(max(level, floor))
        return out

    @staticmethod
    def apply(labels: np.ndarray, levels: np.ndarray,
              thresholds: List[int]) -> np.ndarray:
        """``labels`` with the pixels under their class's threshold set to
        255 (a copy)."""
        labels = np.asarray(labels)
        cut = np.asarray(thresholds, np.int64)[labels.astype(np.int64)]
        out = labels.copy()
        out[levels.astype(np.int64) < cut] = IGNORE_INDEX
        return out


def add_class_histograms(histograms: np.ndarray, labels: np.ndarray,
                         levels: np.ndarray) -> None:
    """Add one label map's pixel counts per predicted class and confidence
    level to ``histograms`` [C, LEVELS], in place."""
    labels = np.asarray(labels).ravel()
    levels = np.asarray(levels).ravel()
    for c in np.unique(labels):
        histograms[c] += np.bincount(levels[labels == c], minlength=LEVELS)


def kept_counts(histograms: np.ndarray, thresholds: List[int]) -> Dict:
    """Pixels kept and in all, per class, under ``thresholds``."""
    kept = [int(h[t:].sum()) for h, t in zip(histograms, thresholds)]
    total = [int(h.sum()) for h in histograms]
    return dict(kept=kept, total=total)
