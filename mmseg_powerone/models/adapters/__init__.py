from .albef import ALBEFAdapter
from .base import BaseVLMAdapter
from .blip import BLIPAdapter

__all__ = ['ALBEFAdapter', 'BaseVLMAdapter', 'BLIPAdapter']
