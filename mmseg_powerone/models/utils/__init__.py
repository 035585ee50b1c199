"""The segmentor's building blocks: map building (``maps``), the
convolutional CRF (``crf``), checks and steps around predictions
(``postprocess``) and tuned-checkpoint handling (``tuned_state``)."""
from .crf import ConvCRF

__all__ = ['ConvCRF']
