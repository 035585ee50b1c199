from .adapters import ALBEFAdapter, BaseVLMAdapter, BLIPAdapter
from .crf import ConvCRF
from .segmentor import VLMAttentionSegmentor

__all__ = ['ALBEFAdapter', 'BaseVLMAdapter', 'BLIPAdapter', 'ConvCRF', 'VLMAttentionSegmentor']
