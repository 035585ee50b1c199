from .base import BaseVLMAdapter
from .blip import BLIPAdapter

__all__ = ['BaseVLMAdapter', 'BLIPAdapter']
