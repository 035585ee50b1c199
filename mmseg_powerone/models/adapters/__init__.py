from .albef import ALBEFAdapter
from .base import BaseVLMAdapter
from .blip import BLIPAdapter
from .llava import LLaVAAdapter

__all__ = ['ALBEFAdapter', 'BaseVLMAdapter', 'BLIPAdapter', 'LLaVAAdapter']
