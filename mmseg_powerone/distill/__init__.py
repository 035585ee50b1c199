"""Distillation into a stock mmseg student: pseudo-labels from any teacher
(:func:`pseudo_label`), the rule that picks the pixels a student trains on
(:class:`ConfidenceRule`), and the folder between the two."""
from .confidence import ConfidenceRule
from .pseudo_label import (PseudoLabelHook, PseudoLabelSampler, finalize,
                           pseudo_label)

__all__ = ['ConfidenceRule', 'PseudoLabelHook', 'PseudoLabelSampler',
           'finalize', 'pseudo_label']
