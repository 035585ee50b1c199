from .adapters import (ALBEFAdapter, BaseVLMAdapter, BLIPAdapter,
                       LLaVAAdapter)
from .segmentors import VLMAttentionSegmentor
from .utils import ConvCRF

__all__ = ['ALBEFAdapter', 'BaseVLMAdapter', 'BLIPAdapter', 'LLaVAAdapter', 'ConvCRF', 'VLMAttentionSegmentor']
