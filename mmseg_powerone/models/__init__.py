from .adapters import (ALBEFAdapter, BaseVLMAdapter, BLIPAdapter,
                       LLaVAAdapter)
from .crf import ConvCRF
from .segmentor import VLMAttentionSegmentor

__all__ = ['ALBEFAdapter', 'BaseVLMAdapter', 'BLIPAdapter', 'LLaVAAdapter', 'ConvCRF', 'VLMAttentionSegmentor']
