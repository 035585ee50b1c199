"""Evaluation helpers beside mmseg's IoUMetric: AUROC of presence scores
and Spearman correlation, both from average ranks."""
from .ranking import auroc, average_ranks, presence_auroc, spearman

__all__ = ['auroc', 'average_ranks', 'presence_auroc', 'spearman']
