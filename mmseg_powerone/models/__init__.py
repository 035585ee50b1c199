from .adapters import BaseVLMAdapter, BLIPAdapter
from .segmentor import VLMAttentionSegmentor

__all__ = ['BaseVLMAdapter', 'BLIPAdapter', 'VLMAttentionSegmentor']
