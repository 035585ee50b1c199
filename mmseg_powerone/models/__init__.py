from .adapters import BaseVLMAdapter, BLIPAdapter
from .crf import ConvCRF
from .segmentor import VLMAttentionSegmentor

__all__ = ['BaseVLMAdapter', 'BLIPAdapter', 'ConvCRF', 'VLMAttentionSegmentor']
